"""A sweep past what a terminal can show: refused with how to get it, or written whole to
--csv FILE; never a silently shortened table."""
from __future__ import annotations

import csv

from archcalc.cli import main

TINY = "network T(H=4, W=5, c=2) {\n    input x : (H, W, 3)\n    conv a : f=1 c=c\n}\n"


def test_a_sweep_too_big_to_print_is_refused_with_how_to_get_it(tmp_path, capsys):
    spec = tmp_path / "t.arch"
    spec.write_text(TINY)
    assert main(["sweep", str(spec), "--vary", "H=1..101", "--vary", "c=1..100"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == ("error: sweep: 10,100 points are too many to print (at most 10,000)\n"
                   "  = write every point to a file with --csv FILE, or take a step "
                   "(NAME=LOW..HIGH:STEP) or a narrower range\n")


def test_a_big_sweep_goes_whole_to_csv(tmp_path, capsys):
    spec, table = tmp_path / "t.arch", tmp_path / "grid.csv"
    spec.write_text(TINY)
    assert main(["sweep", str(spec), "--vary", "H=1..101", "--vary", "c=1..100",
                 "--csv", str(table)]) == 0
    assert capsys.readouterr().out == f"held: W=5\ncsv: {table} (10,100 points)\n"
    rows = list(csv.reader(table.open()))
    assert rows[0] == ["H", "c", "macs"]
    # a 1x1 conv from 3 channels to c: H*W*c*3 MACs, W held at 5
    assert rows[1:] == [[str(h), str(c), str(h * 5 * c * 3)] for h in range(1, 102)
                        for c in range(1, 101)]


def test_a_small_sweep_prints_and_writes_csv(tmp_path, capsys):
    spec, table = tmp_path / "t.arch", tmp_path / "line.csv"
    spec.write_text(TINY)
    assert main(["sweep", str(spec), "--vary", "W=2..4", "--csv", str(table)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "held: H=4, c=2"
    assert [line.split() for line in out[3:6]] == [["2", "48"], ["3", "72"], ["4", "96"]]
    assert out[6] == f"csv: {table} (3 points)"
    assert table.read_text() == "W,macs\n2,48\n3,72\n4,96\n"

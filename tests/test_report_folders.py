"""Report folders: nothing written outside --out, each folder replaced whole or not at all, one
writer at a time, files made under the user's umask."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from archcalc.cli import main
from archcalc.present import plots, report
from conftest import SPECS

NIN = (SPECS / "nin_1x1.arch").read_text()
HINT = "  = rename the file: its report folder takes the file's name without its suffix\n"


def tree(root: Path) -> dict:
    """Every file and folder under `root`, by relative path: file bytes, or None for a folder."""
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("file, name, why", [
    ("...arch", "..", "which is not a folder inside --out"),
    ("..arch", ".", "which is not a folder inside --out"),
    (".hidden.arch", ".hidden",
     "a hidden name (names starting with '.' are kept for archcalc's temporary files)"),
    ("index.md.arch", "index.md", "the name of an index file beside the report folders"),
    ("a\\b.arch", "a\\b", "which contains a path separator or a NUL character")])
def test_a_name_that_would_leave_out_is_refused_before_any_work(tmp_path, capsys, file, name, why):
    specs, out = tmp_path / "specs", tmp_path / "parent" / "out"
    specs.mkdir()
    (specs / file).write_text(NIN)
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "report.md").write_text("mine")
    assert main(["report", str(specs), "--out", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot report '{specs / file}': its report folder would be named '{name}', "
        f"{why}\n" + HINT)
    assert tree(tmp_path / "parent") == {"report.md": b"mine"}  # --out not even made


def test_a_folder_linked_outside_out_is_not_written_through(tmp_path, capsys):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "report.md").write_text("mine")
    out.mkdir()
    (out / "nin_1x1").symlink_to(elsewhere)
    assert main(["report", str(SPECS / "lenet5.arch"), str(SPECS / "nin_1x1.arch"),
                 "--out", str(out)]) == 1
    assert capsys.readouterr().err == (f"error: refusing to write '{out / 'nin_1x1'}': it is "
                                       f"outside the output folder '{out}'\n")
    assert tree(elsewhere) == {"report.md": b"mine"}
    assert sorted(p.name for p in out.iterdir()) == ["nin_1x1"]  # refused before any drawing
    with pytest.raises(report.SpecError, match="outside the output folder"):  # the last guard
        report.inside(out / "nin_1x1" / "report.md", out)


def test_a_run_that_fails_midway_leaves_the_old_folder_whole(tmp_path, monkeypatch):
    out = tmp_path / "out"
    assert main(["report", str(SPECS / "lenet5.arch"), "--out", str(out), "--jobs", "1"]) == 0
    before = tree(out)
    (out / "lenet5" / "report.md").write_text("old report")  # so a new one would show
    before["lenet5/report.md"] = b"old report"

    def killed(*args):  # the run dies after cost.png, while drawing the graph
        raise KeyboardInterrupt
    monkeypatch.setattr(plots, "graph_drawing", killed)
    with pytest.raises(KeyboardInterrupt):
        main(["report", str(SPECS / "lenet5.arch"), "--out", str(out), "--jobs", "1"])
    assert tree(out) == before


def test_the_next_run_cleans_what_a_killed_run_left(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["report", str(SPECS / "lenet5.arch"), "--out", str(out), "--jobs", "1"]) == 0
    # a run killed at each step: drawing a folder, between the two renames of a swap (the old
    # folder set aside, the new one not yet in), after a swap, writing the index
    (out / ".lenet5.tmp-4242").mkdir()
    (out / ".lenet5.tmp-4242" / "cost.png").write_text("half")
    (out / "alexnet").mkdir()
    (out / "alexnet" / "report.md").write_text("the old alexnet")
    os.rename(out / "alexnet", out / ".alexnet.old-4242")
    (out / ".lenet5.old-4242").mkdir()
    (out / ".index.md.tmp-4242").write_text("half")
    (out / ".index.html.tmp-4242").write_text("half")
    (out / ".scatter.png.tmp-4242").write_text("half")
    # not archcalc's: kept
    (out / ".keep").write_text("mine")
    (out / ".lenet5.tmp-x").write_text("mine")
    (out / "notes.tmp-4242").write_text("mine")
    assert main(["report", str(SPECS / "lenet5.arch"), "--out", str(out), "--jobs", "1"]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        ".keep", ".lenet5.tmp-x", "alexnet", "index.html", "index.md", "lenet5", "notes.tmp-4242", "scatter.png"]
    assert (out / "alexnet" / "report.md").read_text() == "the old alexnet"  # put back


def test_a_second_writer_is_refused(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    held = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running `archcalc report` does
        assert main(["report", str(SPECS / "lenet5.arch"), "--out", str(out)]) == 1
    finally:
        os.close(held)
    assert capsys.readouterr().err == (f"error: another archcalc report is writing into '{out}'\n"
                                       "  = wait for it to finish, or give another --out\n")
    assert list(out.iterdir()) == []
    assert main(["report", str(SPECS / "lenet5.arch"), "--out", str(out)]) == 0  # released


@pytest.mark.parametrize("umask, folder, file", [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600),
                                                 (0o002, 0o775, 0o664)])
def test_reports_are_written_under_the_umask(tmp_path, umask, folder, file):
    out = tmp_path / "out"
    old = os.umask(umask)
    try:
        assert main(["report", str(SPECS / "lenet5.arch"), "--out", str(out)]) == 0
    finally:
        os.umask(old)
    modes = {p.relative_to(out).as_posix(): p.stat().st_mode & 0o777 for p in out.rglob("*")}
    assert modes == {"lenet5": folder, "lenet5/report.md": file, "lenet5/report.html": file,
                     "lenet5/cost.png": file, "lenet5/graph.png": file, "index.md": file,
                     "index.html": file, "scatter.png": file}


def test_an_empty_out_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["report", str(SPECS / "lenet5.arch"), "--out", ""])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "archcalc report: error: argument --out: expected a folder, got '' (use '.' for this "
        "folder)")


# ---------------------------------------------------------------- valid specs are reported

def test_a_size_without_default_is_one_message(tmp_path, capsys):
    spec = tmp_path / "free.arch"
    spec.write_text("network F(H) {\n input x : (H, H, 3)\n conv a : f=3 c=4\n}\n")
    assert main(["report", str(spec), "--out", str(tmp_path / "out")]) == 1
    assert capsys.readouterr().err == (
        f"error: cannot report '{spec}': size 'H' has no default value\n"
        "  = a report analyses every network at its default sizes\n"
        "  = archcalc analyze --set H=... analyses it at a size you choose\n")


def test_a_network_without_parameters_is_reported(tmp_path, capsys):
    spec = tmp_path / "pool.arch"
    spec.write_text("network P {\n input x : (8, 8, 3)\n relu r\n maxpool m : f=2 s=2\n}\n")
    out = tmp_path / "out"
    assert main(["report", str(spec), "--out", str(out)]) == 0
    assert capsys.readouterr().out == (f"{out}/pool/: report.md, report.html, cost.png, graph.png\n"
                                       f"{out}/index.md, {out}/index.html, {out}/scatter.png: "
                                       "1 networks\n")
    assert "| [P](pool/report.md) |" in (out / "index.md").read_text()
    assert (out / "scatter.png").read_bytes().startswith(b"\x89PNG")


def test_the_scaling_curve_of_one_symbol_starts_where_the_network_fits(tmp_path, capsys):
    import archcalc
    from archcalc.analysis.bundle import report_bundle
    text = "network N(S=64) {\n input x : (S, S, 3)\n conv a : f=5 c=4\n}\n"
    s = report_bundle(archcalc.loads(text)).scaling
    # the 5x5 conv fits from S = 5: (5 - 5 + 1)^2 * 4 * 5*5*3 = 300 MACs; up to about 4 x 64
    assert s.names == ("S",) and s.xs[0] == 5 and s.macs[0] == 300 and 64 in s.xs
    assert s.xs[-1] == 253 and s.macs[-1] == 249 * 249 * 4 * 75
    assert set(s.params) == {5 * 5 * 3 * 4 + 4}
    spec = tmp_path / "n.arch"
    spec.write_text(text)
    assert main(["report", str(spec), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        f"{tmp_path / 'out'}/n/: report.md, report.html, cost.png, scaling.png, graph.png"


def dies(path, out):
    os._exit(9)  # as a process killed by a signal or the out-of-memory killer ends


def test_a_drawing_process_killed_mid_run_is_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    """A worker that dies breaks the pool; the command says what happened and exits 1."""
    from archcalc.commands import report as command
    monkeypatch.setattr(command, "report_one", dies)
    specs = [str(SPECS / f"{name}.arch") for name in ("lenet5", "nin_1x1")]
    assert main(["report", *specs, "--out", str(tmp_path / "out"), "--jobs", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: a process drawing the reports ended abruptly (killed, or out of memory)")
    assert "= run again, or with --jobs 1 to draw in this process" in err

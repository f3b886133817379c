"""`archcalc report PATHS... --out DIR`: a report folder per network and an index. Each path is
read once (.arch specs and .onnx models, through archcalc.source), its bundle computed once
(archcalc.analysis.bundle), and the renderer writes what it is given.

Networks are independent, and drawing their figures is most of the time: a pool of processes
(one per core, forked so each starts with the package loaded) reads, analyses and draws one
network at a time; the index is written last, from the analyses they send back."""
from __future__ import annotations

import argparse
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..analysis.bundle import report_bundle
from ..errors import SpecError
from ..present.report import Written, check_folders, write_index, write_spec, writing
from ..source import load
from . import positive_int

DEFAULT_OUT = "reports"


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="reports (markdown, HTML, plots) for specs and models, and an index")
    p.add_argument("specs", nargs="+", metavar="PATH",
                   help="a .arch spec or an .onnx model (needs the onnx extra), or a folder: "
                        "every .arch spec in it (models are named one by one)")
    p.add_argument("--out", type=folder, default=None,
                   help="output folder, with index.md, index.html and scatter.png of these "
                        "networks (default: each network's folder in reports/, its index left "
                        "as it is)")
    p.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                   help="processes drawing the figures (default: one per core; 1: no pool)")
    p.set_defaults(main=main)


def folder(text: str) -> str:
    """An argparse type: a folder's name, not empty (a usage error, exit 2, otherwise)."""
    if not text:
        raise argparse.ArgumentTypeError("expected a folder, got '' (use '.' for this folder)")
    return text


def spec_files(paths) -> list[Path]:
    found = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(p.glob("*.arch"))
        elif p.is_file():
            found.append(p)
        else:
            raise SpecError(f"no such spec file or folder: '{p}'")
    if not found:
        raise SpecError("no .arch specs found in " + ", ".join(map(str, paths)))
    return found


def main(args) -> int:
    # Without --out, reports/ gets the networks' folders but keeps its index: `report
    # specs/lenet5.arch` must not turn the index of every spec into an index of one
    name = args.out or DEFAULT_OUT
    files, out = sorted(spec_files(args.specs)), Path(name)
    check_folders(files, out)  # before the work, not after it
    with writing(out):  # one writer at a time; what a killed run left is cleaned first
        written = each_network(files, out, args.jobs)
        if args.out:
            write_index(written, out)
    for w in written:
        print(f"{name}/{Path(w.spec).stem}/: {', '.join(w.files)}")
    if args.out:
        print(f"{name}/index.md, {name}/index.html, {name}/scatter.png: {len(written)} networks")
    else:
        print(f"{name}/index.md left as it is (--out DIR writes an index of these networks)")
    return 0


def report_one(path: Path, out: Path) -> Written:
    return write_spec(report_bundle(load(path)), out)


def each_network(files, out: Path, jobs: int | None) -> list[Written]:
    jobs = min(jobs or usable_cores(), len(files))
    if jobs <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [report_one(f, out) for f in files]
    # the largest files first, so that no big network is left to draw alone at the end
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        started = {f: pool.submit(report_one, f, out)
                   for f in sorted(files, key=lambda f: -f.stat().st_size)}
        try:
            return [started[f].result() for f in files]
        except BrokenProcessPool:  # a worker killed (out of memory, a signal): say so, whole
            raise SpecError("a process drawing the reports ended abruptly (killed, or out of "
                            "memory); each report folder is either the old one or the new one",
                            None, ("run again, or with --jobs 1 to draw in this process",)) from None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1

"""`archcalc report PATHS... --out DIR`: a report folder per network and an index. Each path is
read once (.arch specs and .onnx models, through archcalc.source), its bundle computed once
(archcalc.analysis.bundle), and the renderer writes what it is given."""
from __future__ import annotations

from pathlib import Path

from ..analysis.bundle import report_bundle
from ..errors import SpecError
from ..present.report import check_folders, write_reports
from ..source import load


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="markdown reports and plots for specs and models, and an index")
    p.add_argument("specs", nargs="+", metavar="PATH",
                   help="a .arch spec or an .onnx model (needs the onnx extra), or a folder: "
                        "every .arch spec in it (models are named one by one)")
    p.add_argument("--out", default="reports", help="output folder (default: reports)")
    p.set_defaults(main=main)


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
    files, out = sorted(spec_files(args.specs)), Path(args.out)
    check_folders(files, out)  # before the work, not after it
    written = write_reports([report_bundle(load(f)) for f in files], out)
    for w in written:
        print(f"{args.out}/{Path(w.spec).stem}/: {', '.join(w.files)}")
    print(f"{args.out}/index.md, {args.out}/scatter.png: {len(written)} networks")
    return 0

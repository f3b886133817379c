"""`archcalc report SPECS... --out DIR`: a report folder per spec and an index."""
from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from ..present.report import write_reports


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="markdown reports and plots for specs, and an index")
    p.add_argument("specs", nargs="+", help="spec files or folders of .arch files")
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
    written = write_reports(spec_files(args.specs), Path(args.out))
    for w in written:
        print(f"{args.out}/{Path(w.spec).stem}/: {', '.join(w.files)}")
    print(f"{args.out}/index.md, {args.out}/scatter.png: {len(written)} networks")
    return 0

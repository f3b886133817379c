"""Report folders: one markdown report, its HTML page and its figures per network,
and an index comparing all (index.md, index.html).

The renderer is given one precomputed `analysis.bundle.Bundle` per network: it never reads,
parses or analyses. Writing is deterministic (networks sorted by file, fixed figure sizes, no
timestamps), so committed reports diff cleanly, and whole: a network's folder is drawn in a
hidden sibling (`.NAME.tmp-PID`) and renamed in, so a reader sees the old folder or the new one,
never a mix. One writer at a time (a lock on --out); the next run cleans what a killed one left.
Nothing is written outside --out, whatever the file names."""
from __future__ import annotations

import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..analysis.analyzer import Analysis
from ..analysis.bundle import Bundle
from ..errors import SpecError
from ..sizes import is_int
from . import plots
from .html import index_page, report_page
from .report_text import folder, index_markdown, markdown
from .views import detail_view, overview

INDEX = ("scatter.png", "index.md", "index.html")  # written beside the folders, in this order
# archcalc's own leftovers in --out: a folder or index file being written (tmp) or being
# replaced (old), by the process PID; nothing else there is ever removed
LEFTOVER = re.compile(r"\.(?P<name>.+)\.(?P<kind>tmp|old)-[0-9]+")


@dataclass(frozen=True)
class Written:
    spec: str
    analysis: Analysis
    files: tuple[str, ...]


def scaling_figure(b: Bundle, path) -> bool:
    """MACs against the free size symbols: H = W together, otherwise one symbol on its own."""
    s, a = b.scaling, b.analysis
    if s is None:
        return False
    if len(s.names) == 2:
        h, w = (a.symbols[n] for n in s.names)
        plots.curve(s.xs, {"MACs": [m / 1e9 for m in s.macs]},
                    f"{a.network}: MACs against input size", "input size H = W (pixels)",
                    "MACs per image (G)", path,
                    note=f"{h} x {w}: {a.totals['macs']:,} MACs", mark=h)
        return True
    name = s.names[0]
    default = a.symbols[name]
    plots.curve(s.xs, {"MACs": [m / 1e6 for m in s.macs]}, f"{a.network}: cost against {name}",
                name, "MACs per image (millions)", path,
                note=f"{name} = {default}: {a.totals['macs']:,} MACs, {a.totals['params']:,} params",
                mark=default, below=("params", [p / 1e3 for p in s.params], "parameters (thousands)"))
    return True


def write_spec(b: Bundle, out: Path) -> Written:
    """The folder of one network, named after its file: report.md and its figures, drawn in a
    hidden sibling and swapped in whole."""
    a = b.analysis
    name = folder_name(a.file)
    work = inside(out / temporary(name), out)
    remove(work)  # a leftover of this very pid
    work.mkdir()
    try:
        figures = draw(b, work)
        (work / "report.md").write_text(markdown(b, figures))
        (work / "report.html").write_text(report_page(b), encoding="utf-8")
        swap_in(work, inside(out / name, out))
    except BaseException:
        remove(work)
        raise
    return Written(a.file, a, tuple(["report.md", "report.html", *figures]))


def draw(b: Bundle, folder: Path) -> list[str]:
    a = b.analysis
    plots.cost_bars(a, folder / "cost.png")
    figures = ["cost.png"]
    if scaling_figure(b, folder / "scaling.png"):
        figures.append("scaling.png")
    nodes, edges, title = overview(a, b.args)
    plots.graph_drawing(nodes, edges, title, folder / "graph.png")
    figures.append("graph.png")
    detail = detail_view(a, b.args)
    if detail:
        plots.graph_drawing(*detail, folder / "detail.png")
        figures.append("detail.png")
    return figures


def write_index(written: list[Written], out: Path) -> None:
    """index.md, index.html and scatter.png, all written first, then each renamed over the
    old one."""
    points = [(w.analysis.network, w.analysis.totals["params"], w.analysis.totals["macs"])
              for w in written if is_int(w.analysis.totals["macs"]) and w.analysis.totals["macs"] > 0
              and w.analysis.totals["params"] > 0]
    works = {name: inside(out / temporary(name), out) for name in INDEX}
    try:
        plots.scatter(points, works["scatter.png"])
        works["index.md"].write_text(index_markdown([w.analysis for w in written]))
        works["index.html"].write_text(index_page([w.analysis for w in written]), encoding="utf-8")
        for name, work in works.items():
            os.replace(work, inside(out / name, out))
    except BaseException:
        for work in works.values():
            remove(work)
        raise


def folder_name(file) -> str:
    """The report folder of a spec: its file name without the suffix, if that is a plain name."""
    name = folder(file)
    why = unfit_folder(name)
    if why:
        raise SpecError(f"cannot report '{file}': its report folder would be named '{name}', {why}",
                        None, ("rename the file: its report folder takes the file's name "
                               "without its suffix",))
    return name


def unfit_folder(name: str) -> str | None:
    if name in ("", ".", ".."):
        return "which is not a folder inside --out"
    if set(name) & set("/\\\0"):
        return "which contains a path separator or a NUL character"
    if name.startswith("."):
        return "a hidden name (names starting with '.' are kept for archcalc's temporary files)"
    if name in INDEX:
        return "the name of an index file beside the report folders"
    return None


def check_folders(files, out: Path) -> None:
    """Each network gets the folder of its file name: a plain name, and one per file."""
    stems = {}
    for file in map(Path, files):
        name = folder_name(file)
        if name in stems:
            raise SpecError(f"two specs would share the report folder '{name}': "
                            f"'{stems[name]}' and '{file}'")
        stems[name] = file
    if out.exists() and not out.is_dir():
        raise SpecError(f"cannot write reports into '{out}': it is a file")
    if out.exists():  # a folder linked elsewhere is refused now, and again as it is written
        for name in stems:
            inside(out / name, out)


def inside(path: Path, out: Path) -> Path:
    """`path`, once checked to lie inside `out` (symbolic links followed): the last guard."""
    real, root = Path(os.path.realpath(path)), Path(os.path.realpath(out))
    if root not in real.parents:
        raise SpecError(f"refusing to write '{path}': it is outside the output folder '{out}'")
    return path


def write_reports(bundles: list[Bundle], out: Path) -> list[Written]:
    check_folders([b.analysis.file for b in bundles], out)
    with writing(out):
        ordered = sorted(bundles, key=lambda b: Path(b.analysis.file))
        written = [write_spec(b, out) for b in ordered]
        write_index(written, out)
    return written


@contextmanager
def writing(out: Path):
    """Hold --out for one run: refuse a second writer, clean what a killed run left."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: writers are not serialised
        fcntl = None
    fd = os.open(out, os.O_RDONLY) if fcntl else None
    try:
        if fcntl:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SpecError(f"another archcalc report is writing into '{out}'", None,
                                ("wait for it to finish, or give another --out",)) from None
        clean(out)
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def clean(out: Path) -> None:
    """Remove the leftovers of a killed run; a folder set aside but not yet replaced (the run
    died between the two renames) is put back."""
    for entry in sorted(out.iterdir()):
        m = LEFTOVER.fullmatch(entry.name)
        if not m:
            continue
        final = out / m["name"]
        if m["kind"] == "old" and not (final.exists() or final.is_symlink()):
            os.rename(entry, final)
        else:
            remove(entry)


def temporary(name: str) -> str:
    return f".{name}.tmp-{os.getpid()}"


def swap_in(work: Path, final: Path) -> None:
    """The old folder renamed aside, the new one renamed in, the old one removed."""
    aside = final.with_name(f".{final.name}.old-{os.getpid()}")
    remove(aside)
    if final.exists() or final.is_symlink():
        os.rename(final, aside)
    os.rename(work, final)
    remove(aside)


def remove(path: Path) -> None:
    """A folder with what is in it, or a file or link (never what a link points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()

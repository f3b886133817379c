"""Report folders: one markdown report and its figures per network, and an index comparing all.

The renderer is given one precomputed `analysis.bundle.Bundle` per network: it never reads,
parses or analyses. Writing is atomic per file (a temporary file, then os.replace) and
deterministic (networks sorted by file, fixed figure sizes, no timestamps), so committed
reports diff cleanly."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..analysis.analyzer import Analysis
from ..analysis.bundle import Bundle
from ..errors import SpecError
from ..sizes import is_int
from . import plots
from .report_text import index_markdown, markdown
from .views import detail_view, overview


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
    """The folder of one network, named after its file: report.md and its figures."""
    a = b.analysis
    folder = out / Path(a.file).stem
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    atomic(folder / "cost.png", lambda p: plots.cost_bars(a, p))
    figures.append("cost.png")
    if atomic(folder / "scaling.png", lambda p: scaling_figure(b, p)):
        figures.append("scaling.png")
    nodes, edges, title = overview(a)
    atomic(folder / "graph.png", lambda p: plots.graph_drawing(nodes, edges, title, p))
    figures.append("graph.png")
    detail = detail_view(a)
    if detail:
        atomic(folder / "detail.png", lambda p: plots.graph_drawing(*detail, p))
        figures.append("detail.png")
    text = markdown(b, figures)
    atomic(folder / "report.md", lambda p: Path(p).write_text(text))
    return Written(a.file, a, tuple(["report.md", *figures]))


def write_index(written: list[Written], out: Path) -> None:
    points = [(w.analysis.network, w.analysis.totals["params"], w.analysis.totals["macs"])
              for w in written if is_int(w.analysis.totals["macs"]) and w.analysis.totals["macs"] > 0
              and w.analysis.totals["params"] > 0]
    atomic(out / "scatter.png", lambda p: plots.scatter(points, p))
    text = index_markdown([w.analysis for w in written])
    atomic(out / "index.md", lambda p: Path(p).write_text(text))


def check_folders(files, out: Path) -> None:
    """Each network gets the folder of its file name: two files must not share one."""
    stems = {}
    for file in map(Path, files):
        if file.stem in stems:
            raise SpecError(f"two specs would share the report folder '{file.stem}': "
                            f"'{stems[file.stem]}' and '{file}'")
        stems[file.stem] = file
    if out.exists() and not out.is_dir():
        raise SpecError(f"cannot write reports into '{out}': it is a file")


def write_reports(bundles: list[Bundle], out: Path) -> list[Written]:
    check_folders([b.analysis.file for b in bundles], out)
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(bundles, key=lambda b: Path(b.analysis.file))
    written = [write_spec(b, out) for b in ordered]
    write_index(written, out)
    return written


def atomic(path: Path, write) -> bool:
    """Run `write(temporary_path)`; move the result into place only if it finished."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        made = write(tmp)
        if made is False:
            os.unlink(tmp)
            if path.exists():
                path.unlink()
            return False
        os.replace(tmp, path)
        return True
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Self-contained HTML pages: report.html per network and index.html. One file each, no network
access: the page's own CSS and JavaScript (package data beside this module) are inlined, and the
figures go in as one JSON blob that the script reads and draws (graph, tables, bars, scatter).

Names come from user files, so nothing of them is ever markup: the title is HTML-escaped, the
JSON has '<', '>' and '&' escaped (no '</script>' can end its element), the script writes text
with textContent only, and the Content-Security-Policy lets only the page's own script and style
run (by their hashes), nothing else, nothing fetched."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
from importlib.resources import files

from ...analysis.analyzer import Analysis
from ...analysis.bundle import Bundle
from .data import index_data, report_data

ASSETS = ("page.html", "report.css", "report.js")
ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def asset(name: str) -> str:
    return (files(__name__) / name).read_text(encoding="utf-8")


def script_json(data: dict) -> str:
    """JSON that cannot close or open an element inside <script>, one line."""
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    return re.sub("[<>&\u2028\u2029]", lambda m: ESCAPES[m[0]], text)


def digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def page(title: str, data: dict) -> str:
    css, js = asset("report.css"), asset("report.js")
    values = {"title": html.escape(title), "css": css, "js": js, "data": script_json(data),
              "script_hash": digest(js), "style_hash": digest(css)}
    return re.sub(r"\{\{(\w+)\}\}", lambda m: values[m[1]], asset("page.html"))


def report_page(b: Bundle) -> str:
    return page(f"{b.analysis.network}: archcalc report", report_data(b))


def index_page(analyses: list[Analysis]) -> str:
    return page("archcalc reports", index_data(analyses))

"""Writing a report out: the Jinja environment of the HTML pages, a self-contained HTML file, and terminal text."""

from __future__ import annotations

import textwrap
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from service.report.model import Report

__all__ = ["CSS_FILE", "TEMPLATES_DIR", "environment", "report_html_file", "report_text"]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# The stylesheet the server sends as a static file (its pages carry no inline style); the HTML file embeds it.
CSS_FILE = Path(__file__).resolve().parent.parent / "static" / "report" / "report.css"


@lru_cache(maxsize=1)
def environment() -> Environment:
    """The templates of the report, the form and the sign-in page; everything escaped unless marked safe."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def report_html_file(report: Report) -> str:
    """The report as one HTML file that needs nothing else: its stylesheet inside, no links to a server."""
    template = environment().get_template("report.html")
    return template.render(
        report=report,
        page_title=report.title,
        inline_css=CSS_FILE.read_text(encoding="utf-8"),
        css_url="",
        signed_in=None,
        csrf_input="",
    )


def report_text(report: Report, width: int = 100) -> str:
    """The summary and the tables, for a terminal."""
    out: list[str] = [report.title, "=" * len(report.title)]
    label_width = max((len(label) for label, _ in report.summary), default=0)
    out += [f"{label:<{label_width}}  {value}" for label, value in report.summary]
    for chart in report.charts:
        out += ["", chart.title, *textwrap.wrap(chart.summary, width)]
    out += ["", "Alarms"]
    out += _table(
        ["alarm", "metric", "threshold", "meaning"],
        [[a.name, a.metric, a.threshold, a.meaning] for a in report.alarms],
        width,
    ) or ["(none)"]
    out += ["", "Warnings"]
    out += [f"- {code}: {message}" for code, message in report.warnings] or ["(none)"]
    out += ["", "Rules that fired"]
    rows = [[r.table, r.rule_id, f"{r.file}:{r.line}" if r.file else "", r.outcome] for r in report.rules]
    out += _table(["table", "rule", "where", "outcome"], rows, width)
    return "\n".join(out) + "\n"


def _table(header: list[str], rows: list[list[str]], width: int) -> list[str]:
    """Columns padded to their widest cell; the last column is cut to fit ``width``."""
    if not rows:
        return []
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header) - 1)]
    room = max(20, width - sum(widths) - 2 * len(widths))

    def line(cells: list[str]) -> str:
        last = str(cells[-1])
        last = last if len(last) <= room else last[: room - 1] + "…"
        return "  ".join([*(f"{c:<{w}}" for c, w in zip(cells, widths, strict=False)), last]).rstrip()

    return [line(header), line(["-" * w for w in widths] + ["-" * min(room, 10)]), *(line(r) for r in rows)]

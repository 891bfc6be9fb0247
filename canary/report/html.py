"""The decision report as one self-contained HTML page: the picture inline, then the facts.

The page holds the SVG of :func:`canary.report.picture.decision_svg`, a verdict table (one row
per tick: time, weight, each metric's verdict and value, the failed checks so far), the
decisions, the Git revert, the runs the history keeps, the conditions and the Events. No
script, no external stylesheet, font or image: it opens from a file, a mail attachment or a
CI artefact as it is. Every text from the cluster (names, messages, revisions) is escaped, so
a metric called ``<script>`` stays text. It shows only what status and Events hold (they
never carry secrets).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from canary.commands.stored import printable
from canary.report.model import Comparison, DecisionReport, MetricSeries, Tick
from canary.report.picture import COLOURS, decision_svg

__all__ = ["decision_html"]

STYLE = """
body{font-family:system-ui,-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;
color:#24292f;background:#fff;max-width:1100px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
p.sub{color:#57606a;margin:0 0 16px}
table{border-collapse:collapse;font-size:13px}
th,td{border-bottom:1px solid #d0d7de;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.v-pass{color:#1a7f37}.v-fail{color:#cf222e;font-weight:600}.v-inconclusive{color:#9a6700}
.v-stalled{color:#9a6700;font-weight:600}.v-warmup{color:#0969da}.v-advisory{color:#6e7781}
.v-unknown{color:#8250df}
.warning{color:#cf222e}code{font-size:12px}
figure{margin:0;overflow-x:auto}
"""
SYMBOLS = {
    "pass": "●",
    "fail": "✗",
    "inconclusive": "▲",
    "stalled": "■",
    "warmup": "◆",
    "advisory": "○",
    "unknown": "□",
}


def _e(value: object) -> str:
    """Escaped for HTML, without the characters HTML and XML forbid (control characters,
    U+FFFE), which a status or an Event may hold."""
    return escape(printable(str(value)), quote=True)


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.4g}{unit if unit == '%' else (' ' + unit if unit else '')}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], cls: str) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(text: str, cls: str = "") -> str:
    return f'<td class="{cls}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"


def _verdict_cell(tick: Tick, metric: MetricSeries) -> str:
    v = tick.verdict(metric.name)
    if v is None:
        return "<td>·</td>"
    text = f"{SYMBOLS.get(v.kind, '?')} {v.outcome} {_num(v.value, metric.unit)}"
    if v.primary_value is not None:
        text += f" (primary {_num(v.primary_value, metric.unit)})"
    if v.samples is not None:
        text += f" · n={v.samples:,}"
    colour = COLOURS.get(v.kind, "")
    return (
        f'<td class="verdict v-{_e(v.kind)}" data-verdict="{_e(v.kind)}" '
        f'data-metric="{_e(metric.name)}" style="color:{colour}">{_e(text)}</td>'
    )


def _verdicts(report: DecisionReport) -> str:
    if not report.ticks:
        return "<p>No analysis tick is recorded.</p>"
    headers = ["time", "canary weight", *(m.name for m in report.metrics), "failed checks"]
    rows = [
        [
            _cell(t.time),
            _cell(f"{t.weight}%", "num"),
            *(_verdict_cell(t, m) for m in report.metrics),
            _cell(f"{t.failed_checks}/{report.threshold}", "num"),
        ]
        for t in report.ticks
    ]
    thresholds = "".join(
        f"<li><strong>{_e(m.name)}</strong>: {_e(m.threshold or 'no threshold')}"
        + (" · compared with the primary" if m.compare else "")
        + (" · advisory (dryRun)" if m.advisory else "")
        + (f" · last: {_e(m.last_summary)}" if m.last_summary else "")
        + "</li>"
        for m in report.metrics
    )
    return _table(headers, rows, "verdicts") + f"<ul>{thresholds}</ul>"


def _needed(c: Comparison) -> str:
    if c.needed_samples is None:
        return "-"
    return f"{c.needed_samples:,}" + (f" ({c.scatter})" if c.scatter else "")


def _comparisons(report: DecisionReport) -> str:
    rows = []
    for m in report.metrics:
        c = m.comparison
        if c is None:
            continue
        rows.append(
            [
                _cell(m.name),
                _cell(c.test or "-"),
                _cell(_num(c.canary, m.unit), "num"),
                _cell(_num(c.primary, m.unit), "num"),
                _cell(f"{c.canary_samples or 0:,} / {c.primary_samples or 0:,}", "num"),
                _cell(_needed(c), "num"),
                _cell(f"{c.p_value:.3g}" if c.p_value is not None else "-", "num"),
                _cell(
                    f"{c.likelihood_ratio:.3g}" if c.likelihood_ratio is not None else "-", "num"
                ),
                _cell(m.last_outcome or "-"),
            ]
        )
    if not rows:
        return ""
    headers = [
        "metric",
        "test",
        "canary",
        "primary",
        "samples (canary / primary)",
        "needed",
        "p-value",
        "likelihood ratio",
        "verdict",
    ]
    return "<h2>The judge's evidence (last verdict)</h2>" + _table(headers, rows, "comparisons")


def _revert(report: DecisionReport) -> str:
    r = report.revert
    if r is None:
        return ""
    rows = [
        ("state", r.state),
        ("bad revision", r.bad_revision),
        ("good revision", r.good_revision),
        ("revert commit", r.commit),
        ("pull request", r.pull_request),
        ("reason", r.reason),
        ("message", r.message),
        ("attempts", str(r.attempts)),
    ]
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v)
    return f'<h2>Git revert</h2><table class="revert">{body}</table>'


def decision_html(report: DecisionReport) -> str:
    """The page (UTF-8 text)."""
    run = report.run
    sub = f"phase {report.phase or '-'} · canary weight {report.canary_weight}%"
    if run is not None:
        sub += f" · run {run.number} of {len(report.runs)}: {run.revision or '-'}"
        sub += f" ({run.result or 'under way'}{': ' + run.reason if run.reason else ''})"
    if report.last_good_revision:
        sub += f" · last good {report.last_good_revision}"
    decisions = _table(
        ["time", "decision", "event"],
        [
            [
                _cell(m.time),
                f'<td class="decision-{_e(m.kind)}">{_e(m.label)}</td>',
                _cell(m.message, "warning" if m.warning else ""),
            ]
            for m in report.markers
        ],
        "decisions",
    )
    runs = _table(
        ["run", "revision", "started", "ended", "result", "ticks kept"],
        [
            [
                _cell(str(r.number)),
                _cell(r.revision),
                _cell(r.started),
                _cell(r.ended or "under way"),
                _cell(r.result + (f": {r.reason}" if r.reason else "")),
                _cell(str(r.ticks), "num"),
            ]
            for r in report.runs
        ],
        "runs",
    )
    conditions = _table(
        ["type", "status", "reason", "message", "since"],
        [
            [
                _cell(c.get(k, ""))
                for k in ("type", "status", "reason", "message", "lastTransitionTime")
            ]
            for c in report.conditions
        ],
        "conditions",
    )
    events = _table(
        ["last seen", "type", "reason", "count", "message"],
        [
            [
                _cell(e.time),
                _cell(e.type, "warning" if e.type == "Warning" else ""),
                _cell(e.reason),
                _cell(str(e.count), "num"),
                _cell(e.message),
            ]
            for e in report.events
        ],
        "events",
    )
    message = f"<p>{_e(report.message)}</p>" if report.message else ""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Decision report: {_e(report.title)}</title><style>{STYLE}</style></head>"
        f"<body><h1>Decision report: {_e(report.title)}</h1>"
        f'<p class="sub">{_e(sub)}</p>{message}'
        f"<figure>{decision_svg(report)}</figure>"
        f"<h2>Verdicts per tick</h2>{_verdicts(report)}"
        f"{_comparisons(report)}"
        f"<h2>Decisions</h2>{decisions if report.markers else '<p>None recorded.</p>'}"
        f"{_revert(report)}"
        f"<h2>Runs kept in the history</h2>{runs if report.runs else '<p>None.</p>'}"
        f"<h2>Conditions</h2>{conditions if report.conditions else '<p>None.</p>'}"
        f"<h2>Events</h2>{events if report.events else '<p>None (Events expire after an hour).</p>'}"
        "</body></html>\n"
    )

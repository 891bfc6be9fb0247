"""The decision report: the picture of a release decision (issue 18, item 1).

``model.build_report`` turns a Canary as the API returns it (its status and analysis history)
and its Events into a frozen :class:`~canary.report.model.DecisionReport`; ``picture.decision_svg``
draws it as one self-contained SVG and ``html.decision_html`` wraps that in one self-contained
HTML page (all three pure: no I/O). ``output`` renders a report as a file's bytes (html, svg,
json, png through ``rsvg-convert``); ``simulated`` builds the report of a ``canary simulate``
run. CLI-side only: canary.controller never imports this package (an import contract).
"""

from __future__ import annotations

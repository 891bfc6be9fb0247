"""``canary dashboard``: a local web UI over the canaries of a cluster (issue 18, item 2).

Why: a release decision is a story over time; ``canary status`` tells it as text, the dashboard
shows it — a live list of the canaries across namespaces and a page per canary with the decision
picture of :mod:`canary.report`, its verdicts, the Git revert with links to the commit or pull
request, and the gates (promote, abort, retry, pause, resume) with exactly the CLI's semantics
(:mod:`canary.commands.gates` plans and writes the annotation).

The parts: :mod:`canary.dashboard.board` watches the Canaries (list + watch through
:class:`canary.adapters.cache.Informer`, never polling each object) and wakes the pages' event
streams; :mod:`canary.dashboard.views` renders HTML (pure, everything escaped);
:mod:`canary.dashboard.links` turns a repository URL into web links;
:mod:`canary.dashboard.server` is the aiohttp application with its safety rules (loopback Host
only, POST + CSRF token + Origin check for writes, security headers, writes off unless
``--enable-write``). CLI-side only: the controller never imports this package.
"""

from __future__ import annotations

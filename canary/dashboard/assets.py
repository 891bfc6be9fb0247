"""The dashboard's only assets, served from its own origin (no CDN, nothing external): the
stylesheet and the script that applies the server's pushed updates (Server-Sent Events).

The script replaces the live part of the page (``#live``) with the HTML the server sends; that
HTML was escaped on the server, and scripts inserted that way never run. It keeps working
without JavaScript too: the pages are complete HTML and the gates are plain forms.
"""

from __future__ import annotations

__all__ = ["SCRIPT", "STYLE"]

SCRIPT = """\
(function () {
  "use strict";
  var live = document.getElementById("live");
  var state = document.getElementById("connection");
  if (!live || !window.EventSource) { return; }
  var source = new EventSource(live.getAttribute("data-stream"));
  function say(text, cls) {
    if (state) { state.textContent = text; state.className = "connection " + cls; }
  }
  source.addEventListener("open", function () { say("live", "ok"); });
  source.addEventListener("error", function () { say("reconnecting…", "lost"); });
  source.addEventListener("update", function (event) {
    var data = JSON.parse(event.data);
    live.innerHTML = data.html;
    live.setAttribute("data-version", String(data.version));
    say("live", "ok");
  });
})();
"""

STYLE = """\
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa;
  --pass: #1a7f37; --fail: #cf222e; --warn: #9a6700; --info: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1em; padding: .6em 1.2em;
  border-bottom: 1px solid var(--line); background: var(--soft); }
header h1 { font-size: 1.1em; margin: 0; }
header a { color: inherit; text-decoration: none; }
header .mode { margin-left: auto; color: var(--muted); }
main { padding: 1em 1.2em; max-width: 1200px; }
h2 { font-size: 1.05em; margin: 1.4em 0 .5em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35em .6em; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { color: var(--muted); font-weight: 600; font-size: .9em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .92em; }
.muted { color: var(--muted); }
.phase { display: inline-block; padding: 0 .5em; border-radius: 1em; font-weight: 600;
  border: 1px solid currentColor; font-size: .9em; }
.phase-Succeeded, .outcome-Pass, .revert-Reverted, .revert-AlreadyReverted { color: var(--pass); }
.phase-Failed, .outcome-Fail, .outcome-Error, .revert-Failed, .revert-Unresolved { color: var(--fail); }
.phase-Progressing, .phase-Promoting, .phase-Finalising, .phase-Initializing,
.phase-Initialized { color: var(--info); }
.phase-Waiting, .phase-WaitingPromotion, .outcome-Inconclusive, .outcome-NoData,
.revert-Pending, .revert-Proposed { color: var(--warn); }
span.verdict { display: inline-block; margin: 0 .3em .2em 0; padding: 0 .4em; border-radius: .3em;
  border: 1px solid currentColor; font-size: .88em; }
.bar { position: relative; width: 9em; height: .9em; background: #dbe9f7; border-radius: .2em;
  overflow: hidden; display: inline-block; vertical-align: middle; }
.bar > span { position: absolute; left: 0; top: 0; bottom: 0; background: var(--info); }
.banner { border: 1px solid var(--fail); background: #ffebe9; padding: .7em 1em; margin: 0 0 1em;
  border-radius: .4em; }
.banner.note { border-color: var(--info); background: #ddf4ff; }
.banner.ok { border-color: var(--pass); background: #dafbe1; }
.banner strong { display: block; }
.connection { font-size: .85em; }
.connection.ok { color: var(--pass); }
.connection.lost { color: var(--fail); }
.picture { overflow-x: auto; border: 1px solid var(--line); border-radius: .4em; padding: .5em; }
.picture svg { max-width: 100%; height: auto;
  font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1.2em; margin: 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; }
.gates { display: flex; flex-wrap: wrap; gap: .6em; }
.gates form { margin: 0; }
.gates button { font: inherit; padding: .35em .9em; border-radius: .4em; cursor: pointer;
  border: 1px solid var(--line); background: var(--soft); }
.gates button.danger { border-color: var(--fail); color: var(--fail); }
.gates button:disabled { cursor: not-allowed; opacity: .45; }
"""

"""``canary demo``: the whole loop on a laptop.

The story (:mod:`.story`) starts the sandbox API server (the separate :mod:`kubesandbox`
package), Debian's Prometheus scraping demo app processes (:mod:`.demoapp`, :mod:`.apps`),
traffic through the simulated routes (:mod:`.traffic`), a local Git repository with a
GitSource (:mod:`.git`), the controller and a Slack receiver (:mod:`.slack`), and draws the
live panel (:mod:`.ui`). Nothing under ``canary.controller``, ``canary.adapters`` or
``canary.core`` imports this package or the sandbox; import contracts say so.
"""

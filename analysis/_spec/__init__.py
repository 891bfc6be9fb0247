"""The pure part of ``analysis``: specs, their parsers, templates, outcomes, errors.

Nothing here does I/O or arithmetic on arrays, and nothing here imports the
rest of ``analysis``: no numpy, no httpx, no asyncio, no ``canary``
(pyproject.toml's import contracts hold it to that).  That is what lets
``canary.model`` parse every metric of a Canary with these very parsers, and
``canary.core`` share :class:`~analysis.Outcome`, without loading the statistics
or the HTTP client.  Outside ``analysis``, import it through its public face,
:mod:`analysis.spec`.
"""

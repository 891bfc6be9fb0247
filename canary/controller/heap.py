"""Keeping Python's full garbage collections short while the caches hold a large heap.

A full (generation 2) collection walks every container object the process holds, and the
event loop, with every pass due meanwhile, waits for it. With the caches of 11,000 Canaries
that is over a million dicts and lists, and a full collection took 1-2 s; CPython starts one
whenever the objects that survived since the last one reach a quarter of those that had
survived before, which the turnover of a thousand progressing Canaries did four times in two
minutes (bench/scale.py, docs/performance.md). Those pauses were most of the controller's
tick lateness above one second.

`gc.freeze` moves every object alive now into a generation that collections never walk. The
objects are still freed when nothing refers to them (reference counting does not depend on
the collector); only a reference cycle among frozen objects is not reclaimed while frozen.
So the keeper:

* freezes what is alive every `FREEZE_EVERY` seconds: later collections walk only what was
  created since, a small heap, and are short;
* every `COLLECT_EVERY` seconds, unfreezes, collects everything once (one long pause, the
  only one) and freezes again, so that cycles that became garbage while frozen are
  reclaimed and memory does not creep.

The first settling happens when the caches have listed what exists (`settle`).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

log = logging.getLogger("canary.heap")

FREEZE_EVERY = 60.0
COLLECT_EVERY = 3600.0


def settle() -> None:
    """Collect everything once, then leave what is alive out of later collections."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def keep_heap(
    freeze_every: float = FREEZE_EVERY, collect_every: float = COLLECT_EVERY
) -> None:
    """Freeze every ``freeze_every`` seconds and settle every ``collect_every``, until
    cancelled; then unfreeze, so that an operator run in-process (a test, the demo) leaves
    no frozen heap behind."""
    last_collect = time.monotonic()
    try:
        while True:
            await asyncio.sleep(freeze_every)
            if time.monotonic() - last_collect >= collect_every:
                started = time.perf_counter()
                settle()
                last_collect = time.monotonic()
                log.debug("heap settled in %.2fs", time.perf_counter() - started)
            else:
                gc.freeze()
    finally:
        gc.unfreeze()

"""The one place where adapters start a child process (git, kubectl kustomize).

Why a module of its own: every child process needs the same four guarantees, and getting
them right once is easier than in each caller:

* it never blocks the event loop (``asyncio.create_subprocess_exec``);
* it has a time limit, and when the limit expires *or the calling task is cancelled* the
  whole process group is killed (git starts helpers and ssh; kustomize starts git for remote
  bases), so nothing outlives its pass;
* it gets exactly the environment the caller passes (no inherited credentials or config);
* its output is bytes; decoding and classification stay with the caller, which knows the
  tool's messages.

Exceptions::

    ProcessError              the process could not run to completion
      ProcessTimeout          the time limit expired; the process group was killed
      ProcessNotFound         the binary or the working directory does not exist
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from canary.errors import CanaryError

__all__ = ["ProcessError", "ProcessNotFound", "ProcessOutput", "ProcessTimeout", "run_process"]


class ProcessError(CanaryError):
    """A child process could not run to completion."""


class ProcessTimeout(ProcessError):
    def __init__(self, limit: float) -> None:
        super().__init__(f"did not finish within {limit:g}s and was stopped")
        self.limit = limit

    @property
    def transient(self) -> bool:
        return True


class ProcessNotFound(ProcessError):
    pass


@dataclass(frozen=True, slots=True)
class ProcessOutput:
    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes


async def run_process(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    time_limit: float,
    cwd: Path | None = None,
    input: bytes | None = None,
) -> ProcessOutput:
    """Run ``argv`` to completion and return its exit status and output.

    A non-zero exit status is not an error here (callers classify it). Raises
    :class:`ProcessTimeout` when ``time_limit`` expires and :class:`ProcessNotFound` when the
    binary or ``cwd`` is missing; cancellation kills the process group and propagates.
    """
    starting = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=str(cwd) if cwd is not None else None,
            env=dict(env),
            stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
    )
    try:
        proc = await asyncio.shield(starting)
    except FileNotFoundError as exc:
        raise ProcessNotFound(
            f"cannot run {argv[0]!r}: it or the directory {str(cwd)!r} does not exist"
        ) from exc
    except asyncio.CancelledError:
        # Cancelled while the process was being started: it may still come up. Stop it.
        with contextlib.suppress(Exception):
            await _kill(await starting)
        raise
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(input), timeout=time_limit)
    except TimeoutError:
        await _kill(proc)
        raise ProcessTimeout(time_limit) from None
    except BaseException:
        await _kill(proc)
        raise
    returncode = proc.returncode if proc.returncode is not None else -1
    return ProcessOutput(tuple(argv), returncode, stdout, stderr)


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(proc.wait(), timeout=5)

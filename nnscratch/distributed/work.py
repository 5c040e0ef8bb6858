"""Waiting for a collective: :class:`Work`, the handle an asynchronous collective returns, and the
polling wait behind every collective, which never blocks forever.

An MPI collective blocked inside the C library cannot be interrupted: if a peer has died it waits
for ever. So every collective here is started non-blocking and then *polled*: ``Test`` until it
completes, and between polls two checks, each giving a :class:`~nnscratch.distributed.DistributedError`
that names what went wrong instead of a hang:

- every half second, whether the ranks on this host are still running (their process ids were
  exchanged at :func:`~nnscratch.distributed.init_process_group`): a dead one is named at once;
- the process group's ``timeout`` (default 30 minutes, as PyTorch's): after it, the collective
  raises :class:`~nnscratch.distributed.DistributedTimeoutError`, which covers ranks on other hosts.

Polling is also what moves MPI's non-blocking collectives forward (MPICH has no progress thread
unless asked for one): :class:`~nnscratch.nn.parallel.DistributedDataParallel` tests its pending
all-reduces each time a gradient becomes ready, so communication proceeds while backward computes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from nnscratch.distributed.errors import DistributedTimeoutError

#: Seconds of polling without a pause: MPICH moves a non-blocking collective forward only inside
#: ``Test``, so a rank that sleeps stalls its peers; a waiting rank has nothing else to do meanwhile.
BUSY_S = 0.05
#: Seconds slept between polls after that (a peer still computing: spare the core), and how often the
#: peers are checked.
POLL_SLEEP_S = 0.0001
PEER_CHECK_S = 0.5


def describe(what: str | Callable[[], str]) -> str:
    """The name of a collective, built only when an error needs it (formatting costs microseconds)."""
    return what if isinstance(what, str) else what()


def wait_until(
    done: Callable[[], bool], what: str | Callable[[], str], timeout_s: float, check_peers: Callable[[str], None]
) -> float:
    """Poll ``done()`` until it is True; returns the seconds waited.

    Args:
        done: True once the collective has completed (MPI ``Test``); it also drives MPI's progress.
        what: the collective, named by the errors (``"all_reduce of 1,024 float32"``), or a function
            returning that name.
        timeout_s: raise :class:`DistributedTimeoutError` after this long.
        check_peers: raises :class:`DistributedError` when a peer is known to be gone.
    """
    if done():
        return 0.0
    start = time.monotonic()
    next_check = start + PEER_CHECK_S
    while not done():
        now = time.monotonic()
        if now - start > BUSY_S:
            time.sleep(POLL_SLEEP_S)
        if now >= next_check:
            check_peers(describe(what))
            next_check = now + PEER_CHECK_S
        if now - start >= timeout_s:
            raise DistributedTimeoutError(
                f"{describe(what)} did not complete within the process group's timeout of {timeout_s:g} s: "
                "some rank never joined it (it is stuck, on another host and dead, or running different code); pass "
                "init_process_group(timeout=...) to wait longer"
            )
    return time.monotonic() - start


class Work:
    """An asynchronous collective in flight (what ``async_op=True`` returns, as PyTorch's ``Work``).

    Args:
        test: polls the collective; True once it completed.
        finish: runs once after completion (copies results back, divides for an average).
        what: the collective, as errors name it.
        timeout_s, check_peers: see :func:`wait_until`.
    """

    def __init__(
        self,
        test: Callable[[], bool],
        finish: Callable[[], None] | None,
        what: str | Callable[[], str],
        timeout_s: float,
        check_peers: Callable[[str], None],
    ) -> None:
        self._test, self._finish, self._what = test, finish, what
        self._timeout_s, self._check_peers = timeout_s, check_peers
        self._completed = False
        self.waited_s = 0.0  # seconds wait() spent blocked

    @property
    def what(self) -> str:
        """The collective, as errors name it."""
        return describe(self._what)

    def _complete(self) -> None:
        if not self._completed:
            self._completed = True
            if self._finish is not None:
                self._finish()

    def is_completed(self) -> bool:
        """Poll once (this moves the collective forward); True when it has completed."""
        if not self._completed and self._test():
            self._complete()
        return self._completed

    def wait(self, timeout: Any = None) -> bool:
        """Block until the collective completes (at most ``timeout`` seconds or timedelta, else the
        group's); returns True."""
        if not self._completed:
            limit = self._timeout_s if timeout is None else _seconds(timeout)
            self.waited_s += wait_until(self._test, self._what, limit, self._check_peers)
            self._complete()
        return True


class CompletedWork(Work):
    """The Work of a collective that completed when it started (one rank, a blocking backend)."""

    def __init__(self, what: str | Callable[[], str] = "collective") -> None:
        super().__init__(lambda: True, None, what, 0.0, lambda _: None)
        self._completed = True


def _seconds(timeout: Any) -> float:
    seconds = timeout.total_seconds() if hasattr(timeout, "total_seconds") else float(timeout)
    if not seconds > 0:
        raise ValueError(f"timeout: expected a positive number of seconds or a timedelta, got {timeout!r}")
    return float(seconds)

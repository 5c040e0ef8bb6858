"""The process group: which backend, this process's rank, the world size, and the set-up and
tear-down of them (``init_process_group``/``destroy_process_group``, PyTorch's names).

One group exists per process, the world (every rank the launcher started); sub-groups are not
supported. The rank and world size come from the launcher (``mpiexec -n 2 python train.py``), never
from arguments: ``rank=``/``world_size=`` are accepted only to check that they agree.

**When a rank raises.** An uncaught exception on one rank would leave the others waiting in their
next collective, and MPI's own ``Finalize`` at exit would wait too: the job hangs. So, for a group of
more than one rank, :func:`init_process_group` replaces ``sys.excepthook`` (``abort_on_exception=True``,
the default): after the traceback prints, the rank says which it is and calls ``MPI_Abort``, which
ends every rank of the job at once (the launcher prints that rank ``r`` aborted, and exits non-zero).
:func:`destroy_process_group` puts the previous hook back. A rank that is *killed* runs no hook: the
launcher then ends the job (MPICH's ``mpiexec`` within a second, naming the dead process's pid and
host), and where it does not, the survivors' collectives name the dead rank (see
:mod:`nnscratch.distributed.work`).

Example (one process: a world of one rank, no launcher needed):
    >>> import nnscratch.distributed as dist
    >>> dist.init_process_group("mpi")
    >>> dist.get_rank(), dist.get_world_size(), dist.get_backend()
    (0, 1, 'mpi')
    >>> dist.destroy_process_group()
    >>> dist.is_initialized()
    False
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from nnscratch import backend as ns_backend
from nnscratch.distributed import launcher
from nnscratch.distributed.errors import DistributedError

#: PyTorch's default collective timeout.
DEFAULT_TIMEOUT = timedelta(minutes=30)
BACKENDS = ("mpi", "nccl")
NOT_INITIALIZED = (
    "Default process group has not been initialized, please make sure to call init_process_group() "
    "(nnscratch.distributed.init_process_group)"
)


@dataclass
class ProcessGroup:
    """The world group: its backend object, rank, size and timeout."""

    backend: Any
    backend_name: str
    rank: int
    size: int
    timeout_s: float
    previous_excepthook: Any = None


class _GroupMember:
    """``dist.group.WORLD`` (PyTorch's ``GroupMember.WORLD``): the only group there is."""

    WORLD = "WORLD"


group = _GroupMember()
_current: ProcessGroup | None = None


def is_available() -> bool:
    """True: :mod:`nnscratch.distributed` is always part of nnscratch (its backends may be missing)."""
    return True


def is_mpi_available() -> bool:
    """Whether mpi4py is installed (``pip install 'nnscratch[distributed]'``)."""
    return importlib.util.find_spec("mpi4py") is not None


def is_nccl_available() -> bool:
    """Whether CuPy's NCCL bindings are there (a GPU install)."""
    return ns_backend.nccl_module() is not None


def is_initialized() -> bool:
    """Whether :func:`init_process_group` has run (and :func:`destroy_process_group` not since)."""
    return _current is not None


def current_group(group: Any = None) -> ProcessGroup:
    """The process group, checked to exist; ``group`` must be None or ``group.WORLD``."""
    if group is not None and group != _GroupMember.WORLD:
        raise ValueError(f"group: only the world group (None or dist.group.WORLD) exists, got {group!r}")
    if _current is None:
        raise DistributedError(NOT_INITIALIZED)
    return _current


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: timedelta | float | None = None,
    world_size: int = -1,
    rank: int = -1,
    *,
    abort_on_exception: bool = True,
) -> None:
    """Join the ranks the launcher started into one process group.

    Args:
        backend: ``"mpi"`` (CPU arrays, any number of hosts; needs mpi4py) or ``"nccl"`` (CuPy arrays,
            one GPU per rank; bootstrapped over MPI when there is more than one rank). Default:
            ``"nccl"`` when the default device is a GPU, else ``"mpi"``.
        init_method: ``None`` or ``"env://"``: the rank and world size come from the launcher.
        timeout: how long any collective may wait (a timedelta or seconds; default 30 minutes).
        world_size, rank: optional; when given they must match the launcher's.
        abort_on_exception: for more than one rank, make an uncaught exception abort every rank
            (see the module docstring) instead of leaving the others waiting.

    Raises:
        ValueError: an unknown backend, or a rank/world size other than the launcher's.
        DistributedError: already initialized, or the backend's library is missing.
    """
    global _current
    if _current is not None:
        raise DistributedError("init_process_group: the process group is already initialized")
    if backend is None:
        backend = "nccl" if ns_backend.get_default_device().type == "cuda" else "mpi"
    name = str(backend).lower()
    if name not in BACKENDS:
        hint = " (gloo: use 'mpi' for CPU tensors)" if name == "gloo" else ""
        raise ValueError(f"backend: expected one of {BACKENDS}, got {backend!r}{hint}")
    if init_method not in (None, "env://"):
        raise ValueError(
            f"init_method: expected None or 'env://' (ranks come from the MPI launcher), got {init_method!r}"
        )
    timeout_s = _timeout_seconds(timeout)
    if not is_mpi_available() and (name == "mpi" or launcher.launcher_world_size() > 1):
        raise DistributedError(
            f"init_process_group(backend={name!r}): mpi4py is not installed; "
            "pip install 'nnscratch[distributed]' (mpi4py and the mpich wheel)"
        )
    from nnscratch.distributed.mpi_backend import MPIBackend
    from nnscratch.distributed.nccl_backend import NCCLBackend

    mpi = MPIBackend(timeout_s) if is_mpi_available() else None
    for given, actual, what in (
        (world_size, mpi.size if mpi else 1, "world_size"),
        (rank, mpi.rank if mpi else 0, "rank"),
    ):
        if given not in (-1, None) and int(given) != actual:
            raise ValueError(f"{what}: the launcher started this process with {what} {actual}, got {given}")
    chosen = mpi if name == "mpi" else NCCLBackend(timeout_s, mpi if mpi is not None and mpi.size > 1 else None)
    _current = ProcessGroup(chosen, name, chosen.rank, chosen.size, timeout_s)
    if abort_on_exception and chosen.size > 1:
        _current.previous_excepthook = sys.excepthook
        sys.excepthook = _abort_on_uncaught


def destroy_process_group(group: Any = None) -> None:
    """Leave the process group: free its communicator and restore ``sys.excepthook``."""
    global _current
    pg = current_group(group)
    if pg.previous_excepthook is not None and sys.excepthook is _abort_on_uncaught:
        sys.excepthook = pg.previous_excepthook
    _current = None
    pg.backend.close()


def get_rank(group: Any = None) -> int:
    """This process's rank, 0 to ``get_world_size() - 1``."""
    return current_group(group).rank


def get_world_size(group: Any = None) -> int:
    """The number of ranks in the group."""
    return current_group(group).size


def get_backend(group: Any = None) -> str:
    """``"mpi"`` or ``"nccl"``."""
    return current_group(group).backend_name


def rank_or_zero() -> int:
    """The rank when a group exists, else 0 (for code that runs either way)."""
    return _current.rank if _current is not None else 0


def world_size_or_one() -> int:
    """The world size when a group exists, else 1."""
    return _current.size if _current is not None else 1


def abort(code: int = 1) -> None:
    """End every rank of the job now (``MPI_Abort``)."""
    current_group().backend.abort(code)


def _abort_on_uncaught(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
    pg = _current
    previous = pg.previous_excepthook if pg is not None and pg.previous_excepthook else sys.__excepthook__
    previous(exc_type, exc, tb)
    if pg is None:
        return
    sys.stderr.write(
        f"nnscratch.distributed: rank {pg.rank} of {pg.size} stopped on an uncaught {exc_type.__name__}; "
        "aborting every rank (MPI_Abort) so that none waits for it\n"
    )
    sys.stderr.flush()
    pg.backend.abort(1)


def _timeout_seconds(timeout: timedelta | float | None) -> float:
    if timeout is None:
        return DEFAULT_TIMEOUT.total_seconds()
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"timeout: expected a positive timedelta or number of seconds, got {timeout!r}")
    return float(seconds)

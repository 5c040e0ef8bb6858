"""What the MPI launcher tells a process about itself: whether ``mpiexec`` started it, its rank, the
number of ranks, and its rank among the ranks of its host.

The launcher is the MPI engine's own (``mpiexec -n 2 python train.py``); it passes these facts in
environment variables, whose names differ between MPI implementations. Reading them needs no MPI
library, so a script can decide to go distributed before it imports one.

Example:
    >>> from nnscratch.distributed import launcher
    >>> launcher.launched_by_mpi({"PMI_RANK": "1", "PMI_SIZE": "2"})
    True
    >>> launcher.launcher_rank({"OMPI_COMM_WORLD_RANK": "3"}), launcher.launcher_world_size({})
    (3, 1)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

#: Rank, world size and local rank variables, per launcher: MPICH/Hydra and Intel MPI (PMI_*),
#: Open MPI (OMPI_*), PMIx launchers, MVAPICH2.
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK")
SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "MV2_COMM_WORLD_LOCAL_RANK")
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "MV2_COMM_WORLD_LOCAL_SIZE")


def _first_int(names: tuple[str, ...], environ: Mapping[str, str] | None, default: int) -> int:
    env = os.environ if environ is None else environ
    for name in names:
        value = env.get(name)
        if value is not None and value.strip().isdigit():
            return int(value)
    return default


def launched_by_mpi(environ: Mapping[str, str] | None = None) -> bool:
    """Whether an MPI launcher (``mpiexec``/``mpirun``/``srun --mpi``) started this process."""
    env = os.environ if environ is None else environ
    return any(name in env for name in RANK_VARIABLES)


def launcher_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank as the launcher numbered it (0 when not launched by MPI)."""
    return _first_int(RANK_VARIABLES, environ, 0)


def launcher_world_size(environ: Mapping[str, str] | None = None) -> int:
    """The number of processes the launcher started (1 when not launched by MPI)."""
    return _first_int(SIZE_VARIABLES, environ, 1)


def local_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank among those on its host: the GPU it should use (0 when unknown)."""
    return _first_int(LOCAL_RANK_VARIABLES, environ, 0)


def local_world_size(environ: Mapping[str, str] | None = None) -> int:
    """How many ranks share this host (1 when unknown): divide its cores among them."""
    return _first_int(LOCAL_SIZE_VARIABLES, environ, 1)

"""The scripts in workers/ run under mpiexec (tests/distributed/mpi_run.py), never imported by pytest."""

import pytest

import nnscratch.distributed as dist

collect_ignore_glob = ["workers/*"]


@pytest.fixture
def world():
    """A one-rank world (this process, no launcher): the process group of the in-process tests."""
    pytest.importorskip("mpi4py")
    dist.init_process_group("mpi")
    try:
        yield
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()

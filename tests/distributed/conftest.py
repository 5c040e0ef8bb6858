"""The scripts in workers/ run under mpiexec (tests/distributed/mpi_run.py), never imported by pytest."""

collect_ignore_glob = ["workers/*"]

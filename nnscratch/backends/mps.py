"""``torch.backends.mps``: Apple's Metal backend, which nnscratch does not have.

Example:
    >>> from nnscratch.backends import mps
    >>> mps.is_available(), mps.is_built()
    (False, False)
"""


def is_available() -> bool:
    """False: nnscratch runs on the CPU, CUDA or the cudasim emulator, not on Metal."""
    return False


def is_built() -> bool:
    """False: no Metal backend is built into nnscratch."""
    return False

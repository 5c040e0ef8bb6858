"""The error of a file that cannot be read back, shared by the readers of every checkpoint format.

:class:`CheckpointError` (a ``ValueError``, exported as ``nnscratch.CheckpointError``) names the
file and the reason; :func:`file_errors` turns whatever a malformed file makes a reader raise
(zipfile, NumPy, safetensors, pickle) into one, while the operating system's own errors
(``PermissionError``, an I/O error...) pass through unchanged. A leaf module, so that
:mod:`nnscratch.serialization` and :mod:`nnscratch.torch_format` both use it without an import cycle.

Example:
    >>> try:
    ...     with file_errors("x.npz", "not a readable file"):
    ...         int("x")
    ... except CheckpointError as error:
    ...     print(str(error)[:60])
    x.npz: not a readable file (truncated, corrupt or of another
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator


class CheckpointError(ValueError):
    """A file that is not a readable nnscratch save: truncated, corrupt, or of another kind.

    The message names the file and the reason; the error that revealed it, if any, is chained as
    ``__cause__``.
    """


def is_the_files_fault(error: OSError) -> bool:
    """An OSError that the file's contents caused (zipfile seeking to an offset a crafted directory
    gives), as opposed to one of the operating system's (no access, an I/O error...)."""
    return type(error) is OSError and error.errno in (None, errno.EINVAL)


@contextlib.contextmanager
def file_errors(path: str, what: str) -> Iterator[None]:
    """Turn any error that reading a malformed file can raise into a CheckpointError naming ``path``."""
    try:
        yield
    except CheckpointError:
        raise
    except MemoryError:  # within the size limit, the machine's, not the file's: shown as it is
        raise
    except OSError as error:
        if not is_the_files_fault(error):
            raise
        raise CheckpointError(f"{path}: {what} (truncated, corrupt or of another kind): {error}") from error
    except Exception as error:  # zipfile, numpy, safetensors and pickle raise many types on crafted input
        reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise CheckpointError(f"{path}: {what} (truncated, corrupt or of another kind): {reason}") from error

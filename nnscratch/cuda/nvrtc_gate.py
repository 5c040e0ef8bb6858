"""Compile gate: build every CUDA kernel with NVRTC, exactly as CuPy's RawModule would, on any machine.

NVRTC compiles without a GPU. This module drives it through ``cuda-bindings`` (``from cuda.bindings
import nvrtc``, library from ``nvidia-cuda-nvrtc-cu12``) with CuPy 14's options for
``RawModule(code=...)`` (``--std=c++17 -ftz=true --device-as-default-execution-space -arch=sm_XX``)
plus ``-I kernels/`` for ``common.cuh``, and asks ptxas for its resource report
(``--ptxas-options=-v``): registers, spill bytes and static shared memory per kernel.

Run ``python -m nnscratch.cuda.nvrtc_gate [files...]`` (default: ``kernels/*.cu``) for a table; it
exits 1 on any compile error or any spill, 2 when NVRTC is not installed.

Example:
    >>> src = 'extern "C" __global__ void k(float* x) { x[0] = 1.0f; }'
    >>> results = gate_source(src, "k.cu")  # doctest: +SKIP
    >>> results[0].kernels[0].registers  # doctest: +SKIP
    8
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Where the project's kernels (and common.cuh) live.
from nnscratch.cuda import KERNELS_DIR

#: Turing (T4), Ampere (A100), Hopper (H100).
ARCHS = ("sm_75", "sm_80", "sm_90")
#: The options CuPy 14 passes to NVRTC for RawModule(code=...), minus the architecture.
CUPY_OPTIONS = ("--std=c++17", "-ftz=true", "--device-as-default-execution-space")

try:  # optional: installed by the dev extra and in CI
    from cuda.bindings import nvrtc as _nvrtc
except Exception as exc:  # ImportError, or a library that fails to load
    _nvrtc = None
    _IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    _IMPORT_ERROR = ""


def nvrtc_unavailable_reason() -> str | None:
    """``None`` when NVRTC can be used, else a sentence saying why not and what to install."""
    if _nvrtc is not None:
        return None
    return (
        "NVRTC is not importable (pip install 'cuda-bindings>=12.9,<13' 'nvidia-cuda-nvrtc-cu12>=12.9,<13'): "
        + _IMPORT_ERROR
    )


class NvrtcCompileError(RuntimeError):
    """NVRTC rejected a source; the message carries the compiler log."""


@dataclass(frozen=True)
class KernelResources:
    """What ptxas reports for one ``__global__`` function on one architecture."""

    kernel: str
    registers: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    shared_bytes: int = 0
    stack_bytes: int = 0

    @property
    def spills(self) -> int:
        """Bytes spilled to local memory (stores + loads); the gate wants 0."""
        return self.spill_stores + self.spill_loads


@dataclass
class GateResult:
    """One file compiled for one architecture."""

    file: str
    arch: str
    ok: bool
    log: str
    kernels: list[KernelResources] = field(default_factory=list)

    @property
    def spills(self) -> int:
        """Total spill bytes over the file's kernels."""
        return sum(k.spills for k in self.kernels)


def nvrtc_options(arch: str, include_dirs: Sequence[Path | str] = (KERNELS_DIR,)) -> list[str]:
    """CuPy's RawModule options for ``arch`` (``"sm_80"``), the include dirs, and ptxas's report."""
    if not re.fullmatch(r"sm_\d{2,3}a?", arch):
        raise ValueError(f"arch: expected a name such as 'sm_80', got {arch!r}")
    return [*CUPY_OPTIONS, f"-arch={arch}", *(f"-I{d}" for d in include_dirs), "--ptxas-options=-v"]


def _check(result: tuple, what: str) -> tuple:
    status, *values = result
    if status != _nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise NvrtcCompileError(f"{what} failed: {status}")
    return tuple(values)


def _program_log(program) -> str:
    (size,) = _check(_nvrtc.nvrtcGetProgramLogSize(program), "nvrtcGetProgramLogSize")
    buffer = b" " * size
    _check(_nvrtc.nvrtcGetProgramLog(program, buffer), "nvrtcGetProgramLog")
    return buffer.rstrip(b"\0 ").decode(errors="replace")


def compile_source(
    source: str, arch: str, filename: str = "kernel.cu", include_dirs: Sequence[Path | str] = (KERNELS_DIR,)
) -> str:
    """Compile ``source`` for ``arch`` with NVRTC; return the log (ptxas's resource report).

    Raises:
        NvrtcCompileError: the source does not compile; the message has the NVRTC log.
        RuntimeError: NVRTC is not installed.
    """
    if _nvrtc is None:
        raise RuntimeError(nvrtc_unavailable_reason())
    options = [o.encode() for o in nvrtc_options(arch, include_dirs)]
    (program,) = _check(_nvrtc.nvrtcCreateProgram(source.encode(), filename.encode(), 0, [], []), "nvrtcCreateProgram")
    try:
        (status,) = _nvrtc.nvrtcCompileProgram(program, len(options), options)
        log = _program_log(program)
        if status != _nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise NvrtcCompileError(f"NVRTC could not compile {filename} for {arch}:\n{log}")
        return log
    finally:
        _nvrtc.nvrtcDestroyProgram(program)


_ENTRY = re.compile(r"Compiling entry function '([^']+)' for")
_PROPERTIES = re.compile(r"Function properties for (\S+)")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers(?:.*?(\d+) bytes smem)?")


def parse_ptxas_report(log: str) -> list[KernelResources]:
    """Per-kernel resources from ptxas's verbose output (entry functions only)."""
    kernels: dict[str, dict[str, int]] = {}
    entry = properties_of = None
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            entry = m.group(1)
            kernels.setdefault(entry, {})
        elif m := _PROPERTIES.search(line):
            properties_of = m.group(1)
        elif (m := _FRAME.search(line)) and properties_of in kernels:
            stack, stores, loads = (int(v) for v in m.groups())
            kernels[properties_of].update(stack_bytes=stack, spill_stores=stores, spill_loads=loads)
        elif (m := _USED.search(line)) and entry is not None:
            kernels[entry].update(registers=int(m.group(1)), shared_bytes=int(m.group(2) or 0))
    return [KernelResources(name, **values) for name, values in kernels.items()]


def gate_source(
    source: str,
    filename: str,
    archs: Sequence[str] = ARCHS,
    include_dirs: Sequence[Path | str] = (KERNELS_DIR,),
) -> list[GateResult]:
    """Compile one source for every arch; compile errors are recorded (``ok=False``), not raised."""
    results = []
    for arch in archs:
        try:
            log = compile_source(source, arch, filename, include_dirs)
        except NvrtcCompileError as exc:
            results.append(GateResult(filename, arch, False, str(exc)))
        else:
            results.append(GateResult(filename, arch, True, log, parse_ptxas_report(log)))
    return results


def gate_files(paths: Sequence[Path | str], archs: Sequence[str] = ARCHS) -> list[GateResult]:
    """:func:`gate_source` for each file, with its own folder and ``kernels/`` on the include path."""
    results = []
    for path in map(Path, paths):
        include_dirs = (KERNELS_DIR,) if path.parent.resolve() == KERNELS_DIR else (path.parent, KERNELS_DIR)
        results += gate_source(path.read_text(), str(path), archs, include_dirs)
    return results


def format_table(results: Sequence[GateResult]) -> str:
    """A text table: file, arch, kernel, registers, spill bytes, static shared memory, status."""
    rows = [("file", "arch", "kernel", "regs", "spill", "smem", "status")]
    for r in results:
        if not r.ok:
            rows.append((r.file, r.arch, "-", "-", "-", "-", "COMPILE ERROR"))
        for k in r.kernels:
            status = "SPILLS" if k.spills else "ok"
            rows.append((r.file, r.arch, k.kernel, str(k.registers), str(k.spills), str(k.shared_bytes), status))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table, the logs of failed compiles; return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m nnscratch.cuda.nvrtc_gate", description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", help="CUDA sources (default: kernels/*.cu)")
    parser.add_argument("--arch", action="append", help=f"architecture, repeatable (default: {' '.join(ARCHS)})")
    args = parser.parse_args(argv)
    reason = nvrtc_unavailable_reason()
    if reason:
        print(reason, file=sys.stderr)
        return 2
    files = args.files or sorted(KERNELS_DIR.glob("*.cu"))
    if not files:
        print(f"no .cu files given and none in {KERNELS_DIR}", file=sys.stderr)
        return 0
    results = gate_files(files, tuple(args.arch or ARCHS))
    print(format_table(results))
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"\n{r.log}", file=sys.stderr)
    spilled = [r for r in results if r.spills]
    if failed or spilled:
        print(
            f"\nFAILED: {len(failed)} compile error(s), {len(spilled)} file/arch pair(s) with spills",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

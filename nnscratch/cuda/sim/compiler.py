"""Turn CUDA C source into a shared library with g++, cached on disk by content hash.

The translation unit is: ``cudasim_builtins.h`` (CUDA built-ins and the fiber runtime), the
kernel source as written (after ``#line 1`` so messages and ``__LINE__`` match the .cu file), then a
generated table with one entry per kernel. The one textual change to the source: each
``extern __shared__ T name[];`` becomes a pointer to the runtime's dynamic shared-memory buffer,
on the same line.

The .so lands in ``$NNSCRATCH_CACHE/cudasim`` (default ``~/.cache/nnscratch/cudasim``) named by a
hash of (source, headers, flags, kernel names); it is written to a temporary file and renamed, so a
process never loads a half-written library even when several compile the same kernel at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nnscratch.cuda.signature import kernel_signatures_from_source
from nnscratch.cuda.sim.errors import CompileError

HERE = Path(__file__).resolve().parent
HEADERS = (HERE / "cudasim_builtins.h", HERE / "cudasim_runtime.h")
CXX_FLAGS = ("-O2", "-std=c++17", "-fPIC", "-shared", "-ffp-contract=off", "-fno-strict-aliasing")
SHARED_SECTION = "cudasim_smem"

_EXTERN_SHARED = re.compile(
    r"\bextern\s+__shared__\s+(?P<type>[^;\[\]{}()]*?(?:__align__\s*\(\s*\d+\s*\)|alignas\s*\(\s*\d+\s*\))?"
    r"[^;\[\]{}()]*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*\[\s*\]\s*;"
)
_ALIGN = re.compile(r"__align__\s*\(\s*\d+\s*\)|alignas\s*\(\s*\d+\s*\)")


@dataclass(frozen=True)
class CompiledModule:
    """A compiled kernel file: the .so path and each kernel's static shared memory in bytes."""

    library: Path
    static_shared: dict[str, int]
    cache_hit: bool


def cache_dir() -> Path:
    """Where compiled modules live: ``$NNSCRATCH_CACHE/cudasim`` or ``~/.cache/nnscratch/cudasim``."""
    root = os.environ.get("NNSCRATCH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "nnscratch")
    return Path(root) / "cudasim"


def rewrite_extern_shared(source: str) -> str:
    """``extern __shared__ float s[];`` -> ``float* const s = (float*)dynamic shared buffer;``."""

    def replace(match: re.Match) -> str:
        ctype = " ".join(_ALIGN.sub(" ", match.group("type")).split())
        return f"{ctype}* const {match.group('name')} = reinterpret_cast<{ctype}*>(::cudasim::g_dynamic_shared);"

    return _EXTERN_SHARED.sub(replace, source)


def host_options(options: Iterable[str]) -> list[str]:
    """Keep the NVRTC/CuPy options that mean something to g++: include dirs and macros.

    ``-I dir``/``-Idir``/``--include-path=dir`` and ``-D``/``--define-macro=`` (and ``-U``) pass;
    device-only options (``-arch``, ``-ftz``, ``--use_fast_math``, ``--std``...) are dropped.
    """
    kept, items = [], list(options)
    i = 0
    while i < len(items):
        opt = items[i]
        for prefix, flag in (
            ("--include-path=", "-I"),
            ("--define-macro=", "-D"),
            ("--undefine-macro=", "-U"),
        ):
            if opt.startswith(prefix):
                kept.append(flag + opt[len(prefix) :])
                break
        else:
            if opt in ("-I", "-D", "-U") and i + 1 < len(items):
                kept.append(opt + items[i + 1])
                i += 1
            elif opt[:2] in ("-I", "-D", "-U") and len(opt) > 2:
                kept.append(opt)
        i += 1
    return kept


def _include_fingerprint(flags: Sequence[str]) -> str:
    """Hash of the headers in every -I directory, so editing common.cuh invalidates the cache."""
    digest = hashlib.sha256()
    for flag in flags:
        folder = Path(flag[2:]) if flag.startswith("-I") else None
        if folder and folder.is_dir():
            for header in sorted(folder.glob("*.cuh")) + sorted(folder.glob("*.h")):
                digest.update(header.name.encode() + header.read_bytes())
    return digest.hexdigest()


def kernel_table(names: Sequence[str]) -> str:
    """C++ that lists every kernel (name and invoke trampoline) and exports the launch entry points."""
    entries = ",\n".join(
        f"    {{{json.dumps(n)}, &::cudasim::Kernel<decltype(&{n})>::invoke<&{n}>, "
        f"&::cudasim::Kernel<decltype(&{n})>::signature}}"
        for n in names
    )
    return f"""
#line 1 "<cudasim kernel table>"
static const ::cudasim::KernelEntry cudasim_kernels[] = {{
{entries or "    {nullptr, nullptr, nullptr}"}
}};
#define CUDASIM_EXPORT extern "C" __attribute__((visibility("default")))
CUDASIM_EXPORT int cudasim_kernel_count() {{ return {len(names)}; }}
CUDASIM_EXPORT const char* cudasim_kernel_name(int i) {{ return cudasim_kernels[i].name; }}
CUDASIM_EXPORT const char* cudasim_kernel_signature(int i) {{ return cudasim_kernels[i].signature(); }}
CUDASIM_EXPORT int cudasim_launch(int i, const unsigned int* grid, const unsigned int* block,
                                  unsigned long long dynamic_shared, void** args, int order,
                                  unsigned long long seed, const ::cudasim::GuardedArray* arrays,
                                  int narrays, char* message, int message_len, long long* info) {{
    return ::cudasim::launch(cudasim_kernels[i], grid, block, dynamic_shared, args, order, seed, arrays,
                             narrays, message, message_len, info);
}}
"""


def translation_unit(source: str, names: Sequence[str], filename: str) -> str:
    """The whole C++ file g++ compiles for one kernel source."""
    return (
        f'#include "{HEADERS[0]}"\n#line 1 "{filename}"\n' + rewrite_extern_shared(source) + "\n" + kernel_table(names)
    )


def _static_shared(library: Path, names: Sequence[str]) -> dict[str, int]:
    """Bytes of ``__shared__`` variables per kernel, read from the symbol table with objdump.

    A variable declared inside a kernel counts for that kernel; one declared at file scope or in a
    ``__device__`` function counts for every kernel (an over-estimate, never an under-estimate).
    """
    objdump = shutil.which("objdump")
    if objdump is None:
        return {}
    table = subprocess.run([objdump, "-t", "-C", str(library)], capture_output=True, text=True).stdout
    owned = dict.fromkeys(names, 0)
    shared_by_all = 0
    for line in table.splitlines():
        fields = line.split(SHARED_SECTION + "\t")
        if len(fields) != 2:
            continue
        size_text, _, symbol = fields[1].strip().partition(" ")
        size, symbol = int(size_text, 16), symbol.strip()
        if size == 0:
            continue
        owner = symbol.rsplit("::", 1)[0] if "::" in symbol else None
        match = next((n for n in names if owner == n or (owner and n + "(" in owner)), None)
        if match is None:
            shared_by_all += size
        else:
            owned[match] += size
    return {name: size + shared_by_all for name, size in owned.items()}


def compile_source(
    source: str,
    options: Sequence[str] = (),
    name_expressions: Sequence[str] | None = None,
    filename: str = "kernel.cu",
    extra_flags: Sequence[str] = (),
) -> CompiledModule:
    """Compile ``source`` (or fetch it from the cache) and return the library path and shared sizes.

    Args:
        source: CUDA C text.
        options: NVRTC-style options; only include paths and macros reach g++ (see :func:`host_options`).
        name_expressions: kernels to export besides the non-template ``__global__`` functions, e.g.
            ``["scale<float>"]`` for a template kernel.
        filename: shown in compiler messages.
        extra_flags: more g++ flags (e.g. ``-DCUDASIM_USE_UCONTEXT``), part of the cache key.

    Raises:
        CompileError: g++ failed; the message has its log.
    """
    names = list(kernel_signatures_from_source(source)) + [
        n for n in (name_expressions or ()) if n not in kernel_signatures_from_source(source)
    ]
    flags = [*CXX_FLAGS, *host_options(options), *extra_flags]
    unit = translation_unit(source, names, filename)
    digest = hashlib.sha256()
    for part in (unit, *(h.read_text() for h in HEADERS), "\0".join(flags), _include_fingerprint(flags)):
        digest.update(part.encode() + b"\0")
    key = digest.hexdigest()[:32]
    folder = cache_dir()
    library, sizes_file = folder / f"{key}.so", folder / f"{key}.json"
    if library.exists() and sizes_file.exists():
        return CompiledModule(library, json.loads(sizes_file.read_text()), cache_hit=True)

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix="build-") as build:
        cpp = Path(build) / f"{key}.cpp"
        cpp.write_text(unit)
        tmp_library = Path(build) / f"{key}.so"
        result = subprocess.run(["g++", *flags, "-o", str(tmp_library), str(cpp)], capture_output=True, text=True)
        if result.returncode != 0:
            log = result.stderr.replace(str(cpp), "<cudasim translation unit>")
            raise CompileError(f"g++ could not compile {filename} for the emulator:\n{log[-6000:]}")
        sizes = _static_shared(tmp_library, names)
        tmp_sizes = Path(build) / f"{key}.json"
        tmp_sizes.write_text(json.dumps(sizes))
        os.replace(tmp_sizes, sizes_file)  # the .so last: its presence means both files are complete
        os.replace(tmp_library, library)
    return CompiledModule(library, sizes, cache_hit=False)

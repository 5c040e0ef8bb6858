"""C parameter types of CUDA kernels, and the NumPy dtypes they take.

Two sources feed a :class:`KernelSignature`:

* the emulator reads the *types* from the compiled function type (g++ instantiates a template on
  ``decltype(&kernel)``), so typedefs, macros and ``__restrict__`` never confuse it;
* the parameter *names* (for error messages), and the whole signature on the real-GPU path where no
  host compiler runs, come from a small tokenizer over the kernel's parameter list in the source.

Example:
    >>> sig = kernel_signatures_from_source(
    ...     'extern "C" __global__ void axpy(float a, const float* x, float* __restrict__ y, int n) {}'
    ... )["axpy"]
    >>> [str(p) for p in sig.params]
    ['float a', 'const float* x', 'float* y', 'int n']
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

#: C scalar type (after normalisation) -> NumPy dtype, for an LP64 platform (Linux x86-64, aarch64).
C_TYPE_TO_DTYPE: dict[str, np.dtype] = {
    "bool": np.dtype(np.bool_),
    "char": np.dtype(np.int8),
    "signed char": np.dtype(np.int8),
    "unsigned char": np.dtype(np.uint8),
    "short": np.dtype(np.int16),
    "unsigned short": np.dtype(np.uint16),
    "int": np.dtype(np.int32),
    "unsigned int": np.dtype(np.uint32),
    "long": np.dtype(np.int64),
    "unsigned long": np.dtype(np.uint64),
    "long long": np.dtype(np.int64),
    "unsigned long long": np.dtype(np.uint64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
}

#: Type names from <cstdint>/<cstddef> that kernels use, spelled as the C types they stand for.
_ALIASES = {
    "int8_t": "signed char",
    "uint8_t": "unsigned char",
    "int16_t": "short",
    "uint16_t": "unsigned short",
    "int32_t": "int",
    "uint32_t": "unsigned int",
    "int64_t": "long",
    "uint64_t": "unsigned long",
    "size_t": "unsigned long",
    "ptrdiff_t": "long",
    "unsigned": "unsigned int",
    "signed": "int",
}
_QUALIFIERS = {"volatile", "__restrict__", "__restrict", "restrict", "struct"}
_TYPE_WORDS = {"unsigned", "signed", "int", "long", "short", "char", "float", "double", "bool", "void"}


@dataclass(frozen=True)
class CType:
    """A kernel parameter type: a scalar (``int``) or a pointer to one (``const float*``).

    Args:
        base: the scalar type, normalised (``"unsigned int"``, ``"long long"``, ``"void"``...).
        pointer: whether the parameter is a pointer to ``base``.
        const: whether the pointed-to data is ``const`` (meaningful for pointers only).
    """

    base: str
    pointer: bool = False
    const: bool = False

    @property
    def dtype(self) -> np.dtype | None:
        """The NumPy dtype of the scalar (or of the pointed-to elements); ``None`` for void/unknown."""
        return C_TYPE_TO_DTYPE.get(self.base)

    @property
    def supported(self) -> bool:
        """Whether arguments of this type can be checked and converted (``void*`` included)."""
        return self.dtype is not None or (self.pointer and self.base == "void")

    def __str__(self) -> str:
        text = ("const " if self.const and self.pointer else "") + self.base
        return text + "*" if self.pointer else text


@dataclass(frozen=True)
class Param:
    """One kernel parameter: its name in the source (or ``arg<i>``) and its C type."""

    name: str
    ctype: CType

    def __str__(self) -> str:
        return f"{self.ctype} {self.name}"


@dataclass(frozen=True)
class KernelSignature:
    """The name and parameters of one ``__global__`` function."""

    name: str
    params: tuple[Param, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(str(p) for p in self.params)})"


def normalize_base(words: list[str]) -> str:
    """Spell a scalar type one way: ``['long', 'int']`` -> ``'long'``, ``['unsigned']`` -> ``'unsigned int'``.

    Args:
        words: the type's words, qualifiers removed.
    """
    words = [_ALIASES.get(w, w) if len(words) == 1 else w for w in words]
    text = " ".join(words)
    if text in C_TYPE_TO_DTYPE or text == "void":
        return text
    unsigned = "unsigned" in words
    rest = [w for w in words if w not in ("unsigned", "signed")]
    if rest and rest[-1] == "int" and len(rest) > 1:  # "long int", "short int", "long long int"
        rest = rest[:-1]
    core = " ".join(rest) or "int"
    if "signed" in words and core == "char":
        return "signed char"
    return f"unsigned {core}" if unsigned else core


def parse_c_type(text: str) -> CType:
    """Parse a C type without a name: ``'const float*'``, ``'unsigned int'``, ``'float const *'``.

    Top-level ``const`` (``const int``, ``float* const``) does not change how an argument is passed
    and is dropped.
    """
    return _parse_declaration(text, has_name=False)[1]


def parse_param(text: str, index: int) -> Param:
    """Parse one declaration from a parameter list, e.g. ``'const float* __restrict__ x'``."""
    name, ctype = _parse_declaration(text, has_name=True)
    return Param(name or f"arg{index}", ctype)


def _parse_declaration(text: str, has_name: bool) -> tuple[str | None, CType]:
    tokens = re.findall(r"[A-Za-z_]\w*|\*|\[|\]|&|::", text)
    tokens = [t for t in tokens if t not in _QUALIFIERS]
    is_array = "[" in tokens  # float x[] is a pointer
    if is_array:
        tokens = tokens[: tokens.index("[")]
    name = None
    words = [t for t in tokens if t not in ("*", "]")]
    if has_name and words and tokens and tokens[-1] not in ("*",) and words[-1] not in _TYPE_WORDS | {"const"}:
        if len(words) > 1:
            name = words[-1]
            last = len(tokens) - 1 - tokens[::-1].index(name)
            tokens = tokens[:last] + tokens[last + 1 :]
    if is_array:
        tokens.append("*")
    stars = tokens.count("*")
    first_star = tokens.index("*") if stars else len(tokens)
    const = (
        stars > 0
        and "const" in tokens[:first_star]
        or (stars > 1 and "const" in tokens[first_star : len(tokens) - 1 - tokens[::-1].index("*")])
    )
    base_words = [t for t in tokens if t not in ("*", "const", "::")]
    base = normalize_base(base_words) if base_words else "?"
    if stars > 1:
        base = f"?{base}{'*' * (stars - 1)}"
    return name, CType(base, pointer=stars > 0, const=bool(const) and stars > 0)


def parse_compiled_types(text: str) -> list[CType]:
    """Parse the emulator's ``';'``-terminated type list, e.g. ``'const float*;int;'``.

    Unknown types come as ``'?<size>'`` (a struct passed by value): kept, but unsupported.
    """
    return [parse_c_type(t) if not t.startswith("?") else CType(t) for t in text.split(";") if t]


# --- Finding kernels in source ---------------------------------------------------------------------
_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_GLOBAL = re.compile(r"\b__global__\b")
_LAUNCH_BOUNDS = re.compile(r"__launch_bounds__\s*\([^)]*\)")
_NAME = re.compile(r"[\w\s]*?([A-Za-z_]\w*)\s*\(")


def strip_comments(source: str) -> str:
    """Replace comments by spaces (newlines kept, so positions map to the same lines)."""
    return _COMMENTS.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), source)


def _parameter_text(code: str, open_paren: int) -> str:
    depth = 0
    for i in range(open_paren, len(code)):
        depth += {"(": 1, ")": -1}.get(code[i], 0)
        if depth == 0:
            return code[open_paren + 1 : i]
    raise ValueError("source: unbalanced parentheses in a __global__ function's parameter list")


def _split_params(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += {"(": 1, "<": 1, ")": -1, ">": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    parts = [p.strip() for p in parts]
    return [] if parts == [""] or parts == ["void"] else parts


def kernel_signatures_from_source(source: str) -> dict[str, KernelSignature]:
    """Every non-template ``__global__`` function of ``source``, with parameters parsed from the text.

    Template kernels are skipped: they have no single signature (CuPy reaches them through
    ``name_expressions``).
    """
    code = _LAUNCH_BOUNDS.sub(lambda m: " " * len(m.group()), strip_comments(source))
    found: dict[str, KernelSignature] = {}
    for match in _GLOBAL.finditer(code):
        statement_start = max(code.rfind(";", 0, match.start()), code.rfind("}", 0, match.start()))
        if re.search(r"\btemplate\b", code[statement_start + 1 : match.start()]):
            continue
        name_match = _NAME.match(code, match.end() + 1)
        if name_match is None:
            continue
        name = name_match.group(1)
        params = _split_params(_parameter_text(code, name_match.end() - 1))
        found[name] = KernelSignature(name, tuple(parse_param(p, i) for i, p in enumerate(params)))
    return found

"""Parsing kernel parameter lists (source text and compiled type strings)."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch.cuda.signature import (
    CType,
    kernel_signatures_from_source,
    parse_c_type,
    parse_compiled_types,
    parse_param,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("const float*", CType("float", pointer=True, const=True)),
        ("float const *", CType("float", pointer=True, const=True)),
        ("float* const", CType("float", pointer=True)),
        ("unsigned", CType("unsigned int")),
        ("long long int", CType("long long")),
        ("size_t", CType("unsigned long")),
        ("const int", CType("int")),
        ("void*", CType("void", pointer=True)),
    ],
)
def test_parse_c_type(text, expected):
    assert parse_c_type(text) == expected


def test_dtypes_and_support():
    assert parse_c_type("unsigned char*").dtype == np.uint8
    assert parse_c_type("double").dtype == np.float64
    assert not parse_c_type("float**").supported
    assert parse_c_type("void*").supported and not parse_c_type("void").supported


@pytest.mark.parametrize(
    "text, name, ctype",
    [
        ("const float* __restrict__ x", "x", "const float*"),
        ("float x[]", "x", "float*"),
        ("unsigned int n", "n", "unsigned int"),
        ("float", "arg2", "float"),
    ],
)
def test_parse_param(text, name, ctype):
    param = parse_param(text, 2)
    assert (param.name, str(param.ctype)) == (name, ctype)


def test_compiled_types_keep_unknown_structs_as_unsupported():
    types = parse_compiled_types("const float*;int;?12;")
    assert [str(t) for t in types] == ["const float*", "int", "?12"]
    assert not types[2].supported


def test_kernels_found_in_source_skip_comments_and_templates():
    source = """
    // __global__ void commented_out(int x)
    extern "C" __global__ void __launch_bounds__(256) first(const float* a, int n) {}
    template <class T> __global__ void templated(T* a) {}
    extern "C" {
    __global__ void second(void) {}
    }
    """
    found = kernel_signatures_from_source(source)
    assert list(found) == ["first", "second"]
    assert str(found["first"]) == "first(const float* a, int n)"
    assert found["second"].params == ()

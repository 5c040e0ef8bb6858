"""The three-tier rule: every kernel of the NumPy reference tier exists, with the same name and the same
parameters in the same order, in the Numba tier and in the CUDA tier."""

import importlib
import inspect

import pytest

FAMILIES = ("conv", "pool", "norm", "loss", "activation", "dropout", "optim")


EXTRA_KERNELS = {"dropout": ["dropout_mask"], "optim": ["sgd_step", "adam_step", "rmsprop_step", "adagrad_step"]}


def _kernels(family: str, module) -> dict:
    """The kernels of a reference module: those the tier package exports (helpers such as checks excluded)."""
    import nnscratch.ref

    names = [n for n in nnscratch.ref.__all__ if hasattr(module, n)] + EXTRA_KERNELS.get(family, [])
    assert names, f"no kernels found in nnscratch.ref.{family}"
    return {n: getattr(module, n) for n in names}


def _params(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("tier", ["cpu", "cuda"])
def test_every_reference_kernel_exists_in_the_tier_with_the_same_parameters(family, tier):
    ref = importlib.import_module(f"nnscratch.ref.{family}")
    other = importlib.import_module(f"nnscratch.{tier}.{family}")
    winograd_only_on_cpu = tier == "cuda" and family == "conv"
    for name, fn in _kernels(family, ref).items():
        if winograd_only_on_cpu and "winograd" in name:
            continue
        assert hasattr(other, name), f"nnscratch.{tier}.{family} lacks {name}"
        assert _params(getattr(other, name)) == _params(fn), f"{tier}.{family}.{name} parameters differ"

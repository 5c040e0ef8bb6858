"""Load a PyTorch state dict (``torch.save``, ``.safetensors`` or ``.npz``) into a zoo model (no torch needed).

PyTorch and nnscratch store the same layouts (conv weights (OC, C/groups, KH, KW), linear weights
(out, in), BatchNorm weight/bias/running_mean/running_var), so loading is a matter of names: each
model may define ``torch_key(name) -> own name`` (resnets map torchvision's ``conv1`` / ``bn1`` /
``layerS.B.…`` / ``downsample`` / ``fc``); other models use PyTorch's names already. Nothing is
transposed. ``num_batches_tracked`` entries are dropped where the model has no such buffer, and the
file may lack them.

Save from PyTorch with, e.g.::

    torch.save(torch_model.state_dict(), "resnet18.pt")  # read as nnscratch.load reads it
    # or:
    from safetensors.torch import save_file
    save_file({k: v.contiguous() for k, v in torch_model.state_dict().items()}, "resnet18.safetensors")
    # or: np.savez("resnet18.npz", **{k: v.numpy() for k, v in torch_model.state_dict().items()})
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from nnscratch import serialization, torch_format
from nnscratch.nn.module import Module
from nnscratch.tensor import Tensor


def _read_state(path: str) -> dict[str, np.ndarray]:
    """name -> array from a ``.safetensors`` file, a ``torch.save`` file, an nnscratch save, or a plain
    ``np.savez`` archive."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_torch_state_dict: {path}: no such file")
    with open(path, "rb") as file:
        of_torch = torch_format.archive_kind(file) is not None or torch_format.is_torch_name(path)
    if path.lower().endswith(".safetensors") or of_torch:
        state = serialization.load(path)
    else:
        try:
            with np.load(path, allow_pickle=False) as archive:
                if serialization.STRUCTURE_KEY in archive.files:
                    state = serialization.load(path)
                else:
                    state = {name: archive[name] for name in archive.files}
        except (zipfile.BadZipFile, ValueError, OSError) as error:
            raise serialization.CheckpointError(
                f"load_torch_state_dict: {path}: not a readable .npz file: {error}"
            ) from None
    if not isinstance(state, dict):
        raise ValueError(f"load_torch_state_dict: {path}: expected a state dict, got {type(state).__name__}")
    return {k: (v.array if isinstance(v, Tensor) else np.asarray(v)) for k, v in state.items()}


def map_torch_state(model: Module, state: Mapping[str, Any]) -> dict[str, Any]:
    """Rename the keys of a PyTorch state dict to ``model``'s names (``model.torch_key`` if defined)."""
    rename = getattr(model, "torch_key", None)
    own = model.state_dict()
    mapped: dict[str, Any] = {}
    for key, value in state.items():
        new_key = rename(key) if rename is not None else key
        if new_key.endswith("num_batches_tracked") and new_key not in own:
            continue
        if new_key in mapped:
            raise ValueError(f"load_torch_state_dict: two keys map onto {new_key!r} (the second is {key!r})")
        mapped[new_key] = value
    return mapped


def load_torch_state_dict(
    model: Module, path: str | os.PathLike | Mapping[str, Any], strict: bool = True
) -> dict[str, list[str]]:
    """Copy a PyTorch state dict's values into ``model`` (in place), mapping names as the model says.

    Args:
        model: the nnscratch model to fill (e.g. ``nnscratch.models.resnet18()``).
        path: a ``.safetensors`` or ``.npz`` file (or an already loaded name -> array mapping).
        strict: raise unless every model entry is filled and every file entry used (default True);
            ``num_batches_tracked`` is never required.

    Returns:
        ``{"missing": [...], "unexpected": [...]}``: model entries not in the file, file entries
        (original names) the model has no place for.

    Raises:
        ValueError: with ``strict``, unmatched keys (each list named), or any shape mismatch (the key,
            the model's shape and the file's).

    Example:
        >>> import numpy as np, os, tempfile, nnscratch as ns
        >>> model = ns.models.resnet20()
        >>> path = os.path.join(tempfile.mkdtemp(), "w.npz")
        >>> np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})
        >>> ns.models.load_torch_state_dict(model, path)
        {'missing': [], 'unexpected': []}
    """
    state = _read_state(os.fspath(path)) if isinstance(path, (str, os.PathLike)) else dict(path)
    rename = getattr(model, "torch_key", lambda key: key)
    original = {rename(k): k for k in state}
    mapped = map_torch_state(model, state)
    own = model.state_dict()
    missing = [k for k in own if k not in mapped and not k.endswith("num_batches_tracked")]
    unexpected = [original.get(k, k) for k in mapped if k not in own]
    mismatched = [
        f"{original.get(k, k)!r} -> {k!r}: model {own[k].shape}, file {tuple(np.shape(v))}"
        for k, v in mapped.items()
        if k in own and tuple(np.shape(v)) != own[k].shape
    ]
    if mismatched:
        raise ValueError("load_torch_state_dict: shape mismatch: " + "; ".join(mismatched))
    if strict and (missing or unexpected):
        raise ValueError(
            f"load_torch_state_dict: {type(model).__name__} entries missing from the file: {missing}; "
            f"file entries with no place in the model: {unexpected}"
        )
    model.load_state_dict({k: v for k, v in mapped.items() if k in own}, strict=False)
    return {"missing": missing, "unexpected": unexpected}

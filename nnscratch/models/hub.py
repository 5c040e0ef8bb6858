"""Pretrained weights: the ones shipped in ``nnscratch/models/pretrained/`` and any file or URL.

The shipped folder holds ``<name>.safetensors`` (a model's ``state_dict()``) and one
``checksums.json`` that maps each name to its SHA-256 and to what a user must know to feed it
(dataset, classes, input size, mean and std, test accuracy). :func:`load_pretrained` verifies the
checksum before reading, so a corrupt or substituted file is refused instead of silently used.

``weights=`` (or its older name ``pretrained=``) of a model function accepts:

* a :class:`~nnscratch.models.Weights` or the short name of a shipped checkpoint (``"fashion-mnist"``
  for resnet20, see :mod:`nnscratch.models.weights`), looked up offline;
* a path to a ``.safetensors`` or ``.npz`` file holding a state dict;
* an ``http(s)://`` or ``file://`` URL, downloaded once into ``<data_root>/weights/`` (the cache of
  :func:`nnscratch.data.data_root`) and verified when ``sha256=`` is given.

Example:
    >>> from nnscratch.models import hub
    >>> hub.pretrained_info("resnet20", "fashion-mnist")["in_channels"]
    1
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from pathlib import Path
from typing import Any

from nnscratch import serialization
from nnscratch.data.download import data_root, download
from nnscratch.nn.module import Module

#: The folder of the shipped weights, inside the installed package.
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pretrained")
CHECKSUMS_FILE = "checksums.json"

#: (model function, short name) -> file name (without extension) in PRETRAINED_DIR.
SHIPPED = {("resnet20", "fashion-mnist"): "resnet20_fashion_mnist"}

_CHUNK = 1 << 20


class PretrainedChecksumError(ValueError):
    """A weights file whose SHA-256 differs from the expected one."""


def sha256sum(path: str | os.PathLike) -> str:
    """The hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_checksums(folder: str) -> dict[str, Any]:
    path = os.path.join(folder, CHECKSUMS_FILE)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write(name: str, model: Module, folder: str = PRETRAINED_DIR, info: dict[str, Any] | None = None) -> str:
    """Save ``model.state_dict()`` as ``<folder>/<name>.safetensors`` (float32) and record its SHA-256.

    Args:
        name: the file name without extension, e.g. ``"resnet20_fashion_mnist"``.
        model: the trained model.
        folder: where to write (default: the shipped folder).
        info: what users of the weights must know (mean, std, classes, accuracy ...), stored with the
            checksum in ``checksums.json``.

    Returns:
        The path of the weights file.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{name}.safetensors")
    state = {key: value.detach().float() for key, value in model.state_dict().items()}
    serialization.save(state, path)
    table = _read_checksums(folder)
    table[name] = {"file": os.path.basename(path), "sha256": sha256sum(path), **(info or {})}
    serialization.atomic_write(
        os.path.join(folder, CHECKSUMS_FILE),
        lambda f: f.write(json.dumps(table, indent=2, sort_keys=True).encode() + b"\n"),
    )
    return path


def pretrained_info(model_name: str, weights: str) -> dict[str, Any]:
    """The ``checksums.json`` entry of a shipped checkpoint (sha256, mean, std, classes, accuracy ...).

    Raises:
        ValueError: ``(model_name, weights)`` names no shipped checkpoint (the message lists them).
    """
    key = (model_name, weights)
    if key not in SHIPPED:
        known = ", ".join(f"{m}(pretrained={w!r})" for m, w in sorted(SHIPPED))
        raise ValueError(f"pretrained: no shipped weights {weights!r} for {model_name}; shipped: {known}")
    table = _read_checksums(PRETRAINED_DIR)
    name = SHIPPED[key]
    if name not in table:
        raise FileNotFoundError(
            f"pretrained: {CHECKSUMS_FILE} in {PRETRAINED_DIR} has no entry {name!r} "
            f"(run scripts/pretrain_resnet20_fashion_mnist.py)"
        )
    return dict(table[name])


def _is_url(spec: str) -> bool:
    return urllib.parse.urlparse(spec).scheme in ("http", "https", "file")


def resolve(
    model_name: str, spec: str | os.PathLike, sha256: str | None = None, root: str | os.PathLike | None = None
) -> str:
    """The local path of the weights ``spec`` names (a shipped name, a path or a URL), verified.

    Args:
        model_name: the model function's name, to look up shipped weights.
        spec: a shipped short name, a file path, or an ``http(s)://`` / ``file://`` URL.
        sha256: the expected hex digest (shipped weights always have one).
        root: the download cache root (default: :func:`nnscratch.data.data_root`).

    Raises:
        PretrainedChecksumError: the file's SHA-256 is not ``sha256``.
        FileNotFoundError: a path that does not exist.
    """
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"pretrained: expected a name, a path or a URL (str), got {type(spec).__name__}")
    spec = os.fspath(spec)
    if (model_name, spec) in SHIPPED:
        info = pretrained_info(model_name, spec)
        path, sha256 = os.path.join(PRETRAINED_DIR, info["file"]), info["sha256"]
    elif _is_url(spec):
        file_name = os.path.basename(urllib.parse.urlparse(spec).path) or "weights.safetensors"
        path = str(Path(data_root(root)) / "weights" / file_name)
        if not os.path.exists(path):
            download(spec, path, md5=None, progress=False)
    else:
        path = spec
        if not os.path.exists(path):
            known = ", ".join(w for m, w in SHIPPED if m == model_name) or "none"
            raise FileNotFoundError(
                f"pretrained: {spec!r} is neither a file nor a URL (shipped names for {model_name}: {known})"
            )
    if sha256 is not None:
        actual = sha256sum(path)
        if actual != sha256.lower():
            raise PretrainedChecksumError(
                f"pretrained: {path}: SHA-256 mismatch: expected {sha256}, got {actual} "
                f"(the file is corrupt or not the published one)"
            )
    return path


def load_pretrained(
    model: Module,
    model_name: str,
    spec: str | os.PathLike,
    sha256: str | None = None,
    root: str | os.PathLike | None = None,
) -> Module:
    """Load the weights ``spec`` names into ``model`` (strict: every key must match) and return it."""
    model.load_state_dict(read_state(model_name, spec, sha256, root))
    return model


def read_state(
    model_name: str, spec: str | os.PathLike, sha256: str | None = None, root: str | os.PathLike | None = None
) -> dict[str, Any]:
    """The state dict the weights ``spec`` name (a shipped name, a path or a URL), checksum verified."""
    path = resolve(model_name, spec, sha256, root)
    state = serialization.load(path)
    if not isinstance(state, dict):
        raise ValueError(f"pretrained: {path}: expected a state dict (a dict of tensors), got {type(state).__name__}")
    return state

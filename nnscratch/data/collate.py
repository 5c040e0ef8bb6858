"""``default_collate`` and ``default_convert``: samples to batches of Tensors, with torch's rules.

:func:`default_collate` turns a list of samples into a batch: Tensors and NumPy arrays are stacked
into one Tensor (B, ...); Python floats become a float64 Tensor, ints an int64 one, NumPy scalars a
Tensor of their dtype; strings and bytes stay a list; dicts, namedtuples, tuples and lists are
collated element-wise (a tuple gives a list, as in torch). :func:`default_convert` turns NumPy arrays
and scalars inside one sample into Tensors and leaves everything else (Python numbers too) as is.

Example:
    >>> import numpy as np
    >>> batch = default_collate([(np.zeros(2, np.float32), 1), (np.ones(2, np.float32), 0)])
    >>> batch
    [tensor([[0., 0.],
            [1., 1.]]), tensor([1, 0])]
    >>> default_collate([{"id": "a", "y": 1.5}, {"id": "b", "y": 2.0}])
    {'id': ['a', 'b'], 'y': tensor([1.5, 2. ], dtype=float64)}
"""

from __future__ import annotations

import collections.abc
import copy
from typing import Any

import numpy as np

from nnscratch import backend
from nnscratch.tensor import Tensor

_ERROR = "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"


def _is_string_array(array: np.ndarray) -> bool:
    return array.dtype.kind in "SaUO"


def _cpu() -> backend.Device:
    return backend.get_device("cpu")


def _stack_tensors(batch: list[Tensor]) -> Tensor:
    shapes = {t.shape for t in batch}
    if len(shapes) != 1:
        raise RuntimeError(f"stack expects each tensor to be equal size, but got shapes {sorted(shapes)}")
    xp = backend.get_array_module(batch[0].array)
    return Tensor._wrap(xp.stack([t.array for t in batch]), batch[0].device)  # (B, ...)


def _collate_sequence(batch: list[Any], elem: Any) -> Any:
    size = len(elem)
    if any(len(sample) != size for sample in batch):
        raise RuntimeError("each element in list of batch should be of equal size")
    transposed = [default_collate(list(samples)) for samples in zip(*batch)]
    if isinstance(elem, tuple):
        return transposed  # a list, as torch ("backwards compatibility")
    try:
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, value in enumerate(transposed):
                clone[i] = value
            return clone
        return type(elem)(transposed)
    except TypeError:
        return transposed


def default_collate(batch: list[Any]) -> Any:
    """Stack a list of samples into a batch (see the module notes for the rules).

    Args:
        batch: the samples, all of one structure.

    Raises:
        TypeError: an element of a type that cannot be collated (the message names it).
        RuntimeError: Tensors or arrays of different shapes, or sequences of different lengths.

    Example:
        >>> import nnscratch as ns
        >>> default_collate([ns.zeros(2), ns.ones(2)]).shape
        (2, 2)
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack_tensors(batch)
    if isinstance(elem, np.ndarray):
        if _is_string_array(elem):
            raise TypeError(_ERROR.format(elem.dtype))
        shapes = {np.shape(a) for a in batch}
        if len(shapes) != 1:
            raise RuntimeError(f"stack expects each tensor to be equal size, but got shapes {sorted(shapes)}")
        return Tensor._wrap(np.stack(batch), _cpu())  # (B, ...)
    if isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_)):
        if _is_string_array(np.asarray(elem)):
            raise TypeError(_ERROR.format(type(elem).__name__))
        return Tensor._wrap(np.asarray(batch), _cpu())  # (B,)
    if isinstance(elem, float):
        return Tensor._wrap(np.asarray(batch, dtype=np.float64), _cpu())
    if isinstance(elem, int):  # bool too: a bool Tensor
        return Tensor._wrap(np.asarray(batch), _cpu())
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([sample[key] for sample in batch]) for key in elem}
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(collated)
                return clone
            return type(elem)(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        return _collate_sequence(batch, elem)
    raise TypeError(_ERROR.format(type(elem)))


def default_convert(data: Any) -> Any:
    """NumPy arrays and scalars in one sample as Tensors (zero-copy for arrays); the rest as is.

    What the DataLoader applies to each sample when automatic batching is off (``batch_size=None``).

    Example:
        >>> import numpy as np
        >>> default_convert((np.array([1, 2]), 3, "x"))
        [tensor([1, 2]), 3, 'x']
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _is_string_array(data) else Tensor._wrap(data, _cpu())
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return Tensor._wrap(np.asarray(data), _cpu())
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(data[key]) for key in data}
        try:
            if isinstance(data, collections.abc.MutableMapping):
                clone = copy.copy(data)
                clone.update(converted)
                return clone
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        converted_list = [default_convert(d) for d in data]
        try:
            if isinstance(data, collections.abc.MutableSequence):
                clone = copy.copy(data)
                for i, value in enumerate(converted_list):
                    clone[i] = value
                return clone
            return type(data)(converted_list)
        except TypeError:
            return converted_list
    return data

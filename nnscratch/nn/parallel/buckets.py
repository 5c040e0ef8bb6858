"""Gradient buckets: how DistributedDataParallel groups parameters for its all-reduces, and the
reducer that fills, sends and empties them during backward.

**Why buckets.** One all-reduce per parameter pays the network's latency once per tensor (resnet20
has 65); one for the whole model cannot start before the last gradient exists. PyTorch's answer,
kept here: flat buffers of about ``bucket_cap_mb`` (25 MB), each all-reduced as one message.

**Why in reverse.** Backward produces gradients from the last layer to the first, so parameters are
bucketed in the reverse order of ``model.parameters()``: the first bucket fills first and starts
its all-reduce while backward is still computing the earlier layers' gradients; only the last
bucket's all-reduce runs after backward. The first bucket is kept small (1 MB, as PyTorch's) so that
communication starts early.

**Order.** Every rank must start the same collectives in the same order, whatever order its
gradients finish in: bucket ``i`` starts only after buckets ``0..i-1`` have.

Example:
    >>> import numpy as np
    >>> from nnscratch.nn.parallel.buckets import plan_buckets
    >>> sizes = [(np.dtype("float32"), 1000), (np.dtype("float32"), 300_000), (np.dtype("float32"), 10)]
    >>> [b for b in plan_buckets(sizes, first_cap_bytes=1 << 20, cap_bytes=25 << 20)]
    [[2], [1, 0]]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from nnscratch import autograd
from nnscratch.autograd import no_grad
from nnscratch.distributed import ReduceOp
from nnscratch.distributed.process_group import ProcessGroup
from nnscratch.tensor import Tensor

FIRST_BUCKET_BYTES = 1 << 20  # PyTorch's _DEFAULT_FIRST_BUCKET_BYTES


def plan_buckets(sizes: Sequence[tuple[Any, int]], first_cap_bytes: int, cap_bytes: int) -> list[list[int]]:
    """Group parameters into buckets, walking them in reverse (the order backward produces them).

    Args:
        sizes: (dtype, element count) of each parameter, in ``model.parameters()`` order.
        first_cap_bytes, cap_bytes: the first bucket's size limit, then every other's. A parameter
            larger than the limit gets a bucket of its own; dtypes never share a bucket.

    Returns:
        the buckets, each a list of parameter indices in the order they are laid out.
    """
    buckets: list[list[int]] = []
    open_by_dtype: dict[str, tuple[list[int], int]] = {}
    for index in reversed(range(len(sizes))):
        dtype, count = sizes[index]
        key = str(dtype)
        nbytes = int(count) * np.dtype(dtype).itemsize
        members, used = open_by_dtype.get(key, ([], 0))
        first = not buckets or (bool(members) and members is buckets[0])
        cap = first_cap_bytes if first else cap_bytes
        if members and used + nbytes > cap:
            members, used = [], 0
        if not members:
            buckets.append(members)
        members.append(index)
        open_by_dtype[key] = (members, used + nbytes)
    return buckets


class Bucket:
    """One flat buffer and the parameters laid out in it."""

    def __init__(self, params: list[Tensor]) -> None:
        self.params = params
        self.numels = [int(p.array.size) for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(self.numels)]).astype(int).tolist()
        xp = params[0].device.xp
        self.buffer = xp.zeros(self.offsets[-1], dtype=params[0].dtype)  # (total,)
        self.pending = len(params)
        self.work: Any = None

    @property
    def nbytes(self) -> int:
        return int(self.buffer.nbytes)

    def fill(self) -> None:
        """Copy the parameters' gradients into the buffer (zeros for a parameter without one)."""
        for p, start, end in zip(self.params, self.offsets, self.offsets[1:]):
            if p.grad is None:
                self.buffer[start:end] = 0
            else:
                self.buffer[start:end] = p.grad.array.reshape(-1)

    def empty(self, scale: float) -> None:
        """Write the reduced buffer, times ``scale``, back into the gradients."""
        if scale != 1.0:
            self.buffer *= scale
        for p, start, end in zip(self.params, self.offsets, self.offsets[1:]):
            values = self.buffer[start:end].reshape(p.shape)
            if p.grad is None:
                p.grad = Tensor._wrap(values.copy(), p.device)
            else:
                p.grad.array[...] = values
                p.grad._bump_version()


class Reducer:
    """Averages gradients over the ranks during backward, bucket by bucket (see the module docstring).

    Args:
        params: the parameters to synchronise (those that require grad), in ``model.parameters()`` order.
        group: the process group.
        cap_bytes: the size limit of every bucket after the first.
        overlap: start each bucket's all-reduce from the gradient hooks as soon as it is full (True),
            or all of them after backward (False: the baseline overlap is measured against).

    Attributes:
        wait_s: seconds the last synchronisation spent waiting for all-reduces after backward.
        total_wait_s, syncs: summed over every synchronisation, and how many there were.
    """

    def __init__(self, params: list[Tensor], group: ProcessGroup, cap_bytes: int, overlap: bool = True) -> None:
        self.group, self.overlap = group, overlap
        first = min(FIRST_BUCKET_BYTES, cap_bytes)  # small buckets asked for: the first is no larger
        plan = plan_buckets([(p.dtype, p.array.size) for p in params], first, cap_bytes)
        self.buckets = [Bucket([params[i] for i in members]) for members in plan]
        self._bucket_of = {id(p): b for b, bucket in enumerate(self.buckets) for p in bucket.params}
        self.enabled = True  # False inside no_sync()
        self._armed = False  # a synchronisation is under way in this backward
        self._ready: list[bool] = [False] * len(self.buckets)
        self._next = 0  # the next bucket to start
        self.wait_s, self.total_wait_s, self.syncs = 0.0, 0.0, 0
        self._removers = [p.register_post_accumulate_grad_hook(self._on_gradient) for p in params]

    def remove_hooks(self) -> None:
        for remove in self._removers:
            remove()
        self._removers = []

    @property
    def bucket_bytes(self) -> list[int]:
        return [b.nbytes for b in self.buckets]

    # -- during backward ---------------------------------------------------------------------------
    def _on_gradient(self, param: Tensor) -> None:
        """A post-accumulate hook: ``param``'s gradient of this backward is whole."""
        if not self.enabled:
            return
        if not self._armed:
            self._armed = True
            autograd.queue_callback(self._finish)
        index = self._bucket_of[id(param)]
        bucket = self.buckets[index]
        bucket.pending -= 1
        if bucket.pending == 0:
            self._ready[index] = True
            if self.overlap:
                self._start_ready()
        if self.overlap:
            for started in self.buckets[: self._next]:
                started.work.is_completed()  # polls: moves the all-reduces in flight forward

    def _start(self, bucket: Bucket) -> None:
        bucket.fill()
        bucket.work = self.group.backend.all_reduce(bucket.buffer, ReduceOp.SUM)

    def _start_ready(self) -> None:
        while self._next < len(self.buckets) and self._ready[self._next]:
            self._start(self.buckets[self._next])
            self._next += 1

    def _finish(self) -> None:
        """After backward: start what is left, wait for every all-reduce, write the averages back."""
        with no_grad():
            while self._next < len(self.buckets):  # buckets with unused parameters, or overlap off
                self._start(self.buckets[self._next])
                self._next += 1
            start = time.perf_counter()
            for bucket in self.buckets:
                bucket.work.wait()
            self.wait_s = time.perf_counter() - start
            scale = 1.0 / self.group.size
            for bucket in self.buckets:
                bucket.empty(scale)
                bucket.pending, bucket.work = len(bucket.params), None
        self.total_wait_s += self.wait_s
        self.syncs += 1
        self._armed, self._next = False, 0
        self._ready = [False] * len(self.buckets)

"""SyncBatchNorm: batch norm whose statistics are those of the *global* batch, over every rank.

With :class:`~nnscratch.nn.parallel.DistributedDataParallel`, each rank sees only its share of a
batch. A plain BatchNorm normalises with that share's mean and variance: at 2 ranks x 64 samples the
statistics come from 64 samples, not 128, and the ranks' running statistics drift apart (DDP then
copies rank 0's at each forward). SyncBatchNorm all-gathers each rank's (count, mean, variance) per
channel and combines them exactly, so training matches one process on the whole batch; its backward
all-reduces the two per-channel sums the input gradient needs. The cost is two small collectives of
about 2C numbers per layer per step, on the critical path (they cannot overlap).

Outside training, on one rank, or without a process group it is a plain batch norm.

The combination (Chan et al.'s parallel variance): with counts ``n_r``, means ``m_r`` and biased
variances ``v_r``, ``N = sum n_r``, ``mean = sum n_r m_r / N`` and
``var = sum n_r (v_r + (m_r - mean)^2) / N``; no sum of squares, so no cancellation.
"""

from __future__ import annotations

from typing import Any

from nnscratch import autograd, backend
from nnscratch.distributed import process_group as dist_group
from nnscratch.distributed.reduce_op import ReduceOp
from nnscratch.nn.layers_conv import BatchNorm1d, BatchNorm2d, _BatchNorm
from nnscratch.nn.module import Module
from nnscratch.tensor import Function, Tensor


def _channel_shape(ndim: int) -> tuple[int, ...]:
    return (1, -1) + (1,) * (ndim - 2)


class SyncBatchNormFn(Function):
    """Batch norm with the statistics of the batch of every rank (see the module docstring)."""

    def __init__(self, layer: _BatchNorm, momentum: float) -> None:
        self.layer, self.momentum = layer, momentum
        self.has_weight = layer.affine

    def forward(self, x: Any, *affine: Any) -> Any:
        group = dist_group.current_group()
        xp = backend.get_array_module(x)
        axes = (0, *range(2, x.ndim))
        shape = _channel_shape(x.ndim)
        C = x.shape[1]
        count = x.size // C
        local = xp.concatenate([xp.asarray([count], dtype=x.dtype), x.mean(axis=axes), x.var(axis=axes)])  # (2C + 1,)
        table = xp.empty((group.size, 2 * C + 1), dtype=x.dtype)  # (ranks, 2C + 1)
        group.backend.all_gather(table, local).wait()
        counts, means, variances = table[:, :1], table[:, 1 : C + 1], table[:, C + 1 :]
        total = counts.sum()
        mean = (counts * means).sum(axis=0) / total  # (C,)
        var = (counts * (variances + (means - mean) ** 2)).sum(axis=0) / total  # (C,), biased
        self.invstd = 1.0 / xp.sqrt(var + self.layer.eps)
        self.mean, self.total = mean, float(total)
        layer = self.layer
        if layer.track_running_stats and layer.running_mean is not None:
            m = self.momentum
            unbiased = var * (total / max(total - 1.0, 1.0))
            layer.running_mean.array[...] = (1 - m) * layer.running_mean.array + m * mean
            layer.running_var.array[...] = (1 - m) * layer.running_var.array + m * unbiased
            layer.running_mean._bump_version()
            layer.running_var._bump_version()
        xhat = (x - mean.reshape(shape)) * self.invstd.reshape(shape)  # (N, C, ...)
        if not affine:
            return xhat
        weight, bias = affine
        return xhat * weight.reshape(shape) + bias.reshape(shape)

    def backward(self, gy: Tensor) -> tuple[Tensor | None, ...]:
        if autograd.is_grad_enabled():
            raise RuntimeError("SyncBatchNorm: double backward (create_graph=True) is not supported")
        group = dist_group.current_group()
        x = self.inputs[0].array
        g = gy.array
        xp = backend.get_array_module(x)
        axes = (0, *range(2, x.ndim))
        shape = _channel_shape(x.ndim)
        xhat = (x - self.mean.reshape(shape)) * self.invstd.reshape(shape)
        sum_dy_local = g.sum(axis=axes)  # (C,)
        sum_dy_xhat_local = (g * xhat).sum(axis=axes)  # (C,)
        sums = xp.concatenate([sum_dy_local, sum_dy_xhat_local])  # (2C,)
        group.backend.all_reduce(sums, ReduceOp.SUM).wait()
        C = x.shape[1]
        sum_dy, sum_dy_xhat = sums[:C], sums[C:]
        scale = self.invstd
        if self.has_weight:
            scale = scale * self.inputs[1].array
        gx = scale.reshape(shape) * (
            g - (sum_dy / self.total).reshape(shape) - xhat * (sum_dy_xhat / self.total).reshape(shape)
        )
        device = self.inputs[0].device
        out: list[Tensor | None] = [Tensor._wrap(gx, device)]
        if self.has_weight:  # this rank's share: DistributedDataParallel averages them over the ranks
            out += [Tensor._wrap(sum_dy_xhat_local, device), Tensor._wrap(sum_dy_local, device)]
        return tuple(out)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over the global batch of every rank (PyTorch's ``nn.SyncBatchNorm``).

    Args:
        num_features: C; ``None`` infers it at the first call.
        eps, momentum, affine, track_running_stats: as :class:`~nnscratch.nn.BatchNorm2d`.
        process_group: None (the world).

    Shape:
        (N, C, *): any number of dimensions after the channels.

    Example (no process group: a plain batch norm):
        >>> import nnscratch as ns
        >>> ns.nn.SyncBatchNorm(3)(ns.randn(4, 3, 5, 5)).shape
        (4, 3, 5, 5)
    """

    expected_ndim = (2, 3, 4, 5)

    def __init__(
        self,
        num_features: int | None,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        if process_group is not None and process_group != dist_group.group.WORLD:
            raise ValueError(f"process_group: only the world group (None) exists, got {process_group!r}")

    def _normalise(self, x: Tensor, relu: bool) -> Tensor:
        synced = self.training and dist_group.is_initialized() and dist_group.world_size_or_one() > 1
        if (
            not synced
            or self.num_features is None
            or x.shape[1] != self.num_features
            or x.ndim not in self.expected_ndim
        ):
            return super()._normalise(x, relu)  # one rank, evaluation, or the checks and lazy creation
        momentum = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.array[...] += 1
            if momentum is None:  # a cumulative average, as PyTorch's momentum=None
                momentum = 1.0 / float(self.num_batches_tracked.item())
        inputs = [x, self.weight, self.bias] if self.affine else [x]
        y = SyncBatchNormFn(self, float(momentum if momentum is not None else 0.0))(*inputs)
        return y.relu() if relu else y

    @classmethod
    def convert_sync_batchnorm(cls, module: Module, process_group: Any = None) -> Module:
        """Replace every BatchNorm1d/2d in ``module`` by a SyncBatchNorm holding its parameters and
        statistics; returns the module (``module`` itself unless it is a BatchNorm).

        Example:
            >>> from nnscratch import nn
            >>> net = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)))
            >>> type(net[1]).__name__
            'SyncBatchNorm'
        """
        if isinstance(module, BatchNorm1d | BatchNorm2d):
            converted = cls(None, module.eps, module.momentum, module.affine, module.track_running_stats, process_group)
            if module.num_features is not None:
                converted._create(module.num_features)
                for name in ("weight", "bias"):
                    if getattr(module, name, None) is not None:
                        setattr(converted, name, getattr(module, name))
                for name in ("running_mean", "running_var", "num_batches_tracked"):
                    if getattr(module, name, None) is not None:
                        setattr(converted, name, getattr(module, name))
            converted.train(module.training)
            return converted
        for name, child in list(module._modules.items()):
            if child is not None:
                new = cls.convert_sync_batchnorm(child, process_group)
                if new is not child:
                    module._modules[name] = new  # in place: the order of the children stays
        return module

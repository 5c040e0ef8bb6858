"""DataParallel: PyTorch's single-process, many-GPU wrapper, for the one device nnscratch uses.

``torch.nn.DataParallel(model)`` splits each batch over the visible GPUs and gathers the outputs on
the first. nnscratch computes on one device, so the wrapper runs the model on the whole batch: the
same outputs and gradients as the model alone. It keeps what scripts rely on: the wrapped model as
``.module``, state-dict keys prefixed with ``module.`` (a checkpoint saved through the wrapper loads
into ``wrapper.module`` after stripping them, exactly as in PyTorch), and ``device_ids`` /
``output_device``. Asking for more than one device is an error, not a silent single-device run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nnscratch.nn.module import Module


def _index(device: Any) -> int:
    if isinstance(device, int) and not isinstance(device, bool):
        return device
    name = str(device)
    return int(name.partition(":")[2] or 0)


class DataParallel(Module):
    """Run ``module`` on the whole batch, on its one device (see the module doc for why).

    Args:
        module: the model to wrap.
        device_ids: None (every visible device: here, the one) or a sequence of one id (``[0]``,
            ``["cuda:0"]``). More than one is a ValueError: nnscratch trains on one device, or on
            many processes with ``mpiexec`` (distributed data parallel).
        output_device: None or that same device.
        dim: the batch dimension; accepted for PyTorch's signature (no split is made).

    Shape:
        as ``module``.

    Example:
        >>> import nnscratch as ns
        >>> net = ns.nn.Linear(4, 2)
        >>> model = ns.nn.DataParallel(net, device_ids=[0])
        >>> model(ns.ones(3, 4)).shape, model.module is net
        ((3, 2), True)
    """

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[int | str] | None = None,
        output_device: int | str | None = None,
        dim: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"module: expected an nn.Module, got {type(module).__name__}")
        ids = [0] if device_ids is None else [_index(d) for d in device_ids]
        if len(ids) != 1 or ids[0] != 0:
            raise ValueError(
                f"device_ids: expected None or one device ([0]): nnscratch computes on one device, got "
                f"{list(device_ids or [])}; for many devices or machines train in several processes instead"
            )
        if output_device is not None and _index(output_device) != 0:
            raise ValueError(f"output_device: expected None or the one device 0, got {output_device!r}")
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"dim: expected an int, got {dim!r}")
        self.module = module
        self.device_ids, self.output_device, self.dim = ids, 0, dim

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        return self.module(*inputs, **kwargs)

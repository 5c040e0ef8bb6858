"""Tensor and Function: the heart of nnscratch's autograd.

A :class:`Tensor` wraps an array (NumPy on the CPU, CuPy on a GPU) and, when it was computed by a
differentiable operation, remembers that operation as its ``creator``. A :class:`Function` is one
such operation: ``forward`` works on raw arrays, ``backward`` receives the output gradients as
Tensors and returns the input gradients as Tensors. Because ``backward`` is written with Tensor
operations, it can itself be recorded (``create_graph=True``), which is how second derivatives
work. The walk over the graph lives in :mod:`nnscratch.autograd`.

Two safety nets:

* **Freed graphs.** After ``backward`` a function drops its inputs (unless ``retain_graph=True``),
  so a second backward through it raises a clear error instead of giving wrong gradients.
* **Version counters.** Every in-place change of a tensor (``add_``, ``x[i] = v``, an optimizer
  step) bumps a counter shared by the tensor and its views. A function that needs a tensor in its
  backward records the counter at forward time; if it moved, backward raises.

Example:
    >>> import nnscratch as ns
    >>> x = ns.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    tensor([[2., 4.],
            [6., 8.]])
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from nnscratch import autograd, backend, dtypes
from nnscratch.backend import Device
from nnscratch.memory_format import check_format, preserve_format

# --- dtypes (defined in nnscratch.dtypes; re-exported here for the modules that import them from here)
float32, float64, float16 = dtypes.float32, dtypes.float64, dtypes.float16
int32, int64, uint8, bool_ = dtypes.int32, dtypes.int64, dtypes.uint8, dtypes.bool_
_as_dtype = dtypes.to_dtype


def _default_dtype_for(data: Any) -> np.dtype | None:
    """PyTorch's rule for new tensors: Python floats become the default dtype, ints int64, bools bool."""
    if isinstance(data, bool | np.bool_):
        return bool_
    if isinstance(data, int | np.integer) and not isinstance(data, np.integer):
        return int64
    if isinstance(data, float):
        return dtypes.get_default_dtype()
    if isinstance(data, list | tuple):
        arr = np.asarray(data)
        if arr.dtype.kind == "f":
            return dtypes.get_default_dtype()
        if arr.dtype.kind in "iu":
            return int64
    return None


class _VersionCounter:
    """A counter shared by a tensor and its views, bumped by every in-place change."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


# --- Tensor -------------------------------------------------------------------------------------
class Tensor:
    """A multi-dimensional array that records the operations applied to it.

    Args:
        data: an array, a nested list or a scalar. NumPy and CuPy arrays are wrapped without a copy.
        dtype: element type; by default float32 for Python floats, int64 for ints, and the array's
            own dtype for arrays (as ``torch.tensor``).
        device: ``"cpu"``, ``"cuda"`` or ``"cudasim"``; by default where ``data`` lives.
        requires_grad: record operations on this tensor so that ``backward`` can fill ``.grad``.

    The values live in :attr:`array`, a NumPy array on the CPU or a CuPy array on the GPU; every op
    reads and writes it. :attr:`data` is PyTorch's: a tensor sharing that array, outside the graph.

    Example:
        >>> import nnscratch as ns
        >>> t = ns.Tensor([1.0, 2.0, 3.0], requires_grad=True)
        >>> t.shape, t.dtype, str(t.device)
        ((3,), dtype('float32'), 'cpu')
    """

    __array_priority__ = 1000  # numpy defers binary operators to Tensor
    __array_ufunc__ = None

    def __init__(
        self,
        data: Any,
        dtype: Any = None,
        device: str | Device | None = None,
        requires_grad: bool = False,
    ) -> None:
        if isinstance(data, Tensor):
            data = data.array
        dtype = _as_dtype(dtype) or _default_dtype_for(data)
        if device is None:
            dev = backend.get_device("cuda") if backend.is_cupy_array(data) else backend.get_device("cpu")
        else:
            dev = backend.get_device(device)
        xp = dev.xp
        if xp is np and backend.is_cupy_array(data):
            data = backend.to_numpy(data)
        array = xp.asarray(data, dtype=dtype)
        if requires_grad and array.dtype.kind not in "fc":
            raise RuntimeError(
                f"requires_grad: only floating-point tensors can require gradients, got dtype {array.dtype}"
            )
        self.array = array
        self.device: Device = dev
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.creator: Function | None = None
        self.generation = 0
        self._version_counter = _VersionCounter()
        self._retains_grad = False
        self._hooks: list[Callable[[Tensor], Tensor | None]] = []

    # -- construction helpers used by the engine -------------------------------------------------
    @classmethod
    def _wrap(cls, array: Any, device: Device) -> Tensor:
        """Wrap an array of the right module without conversion (the fast path of every op)."""
        if isinstance(array, np.generic):  # NumPy returns scalars for 0-d results; tensors hold arrays
            array = np.asarray(array)
        t = cls.__new__(cls)
        t.array = array
        t.device = device
        t.grad = None
        t.requires_grad = False
        t.creator = None
        t.generation = 0
        t._version_counter = _VersionCounter()
        t._retains_grad = False
        t._hooks = []
        return t

    @classmethod
    def _zeros(cls, shape: tuple[int, ...], dtype: np.dtype, device: Device) -> Tensor:
        return cls._wrap(device.xp.zeros(shape, dtype=dtype), device)

    @classmethod
    def _ones(cls, shape: tuple[int, ...], dtype: np.dtype, device: Device) -> Tensor:
        return cls._wrap(device.xp.ones(shape, dtype=dtype), device)

    # -- attributes ------------------------------------------------------------------------------
    @property
    def data(self) -> Tensor:
        """The values as a tensor outside the graph, sharing this one's storage (PyTorch's ``.data``).

        Changes made through it are not seen by autograd (unlike :meth:`detach`'s, they are not
        counted as in-place changes), which is why PyTorch code uses it for ``p.data.add_(...)``.
        Assigning replaces the storage: ``p.data = other`` (a Tensor or an array, any shape or dtype).
        The raw NumPy or CuPy array itself is :attr:`array`.

        Example:
            >>> import nnscratch as ns
            >>> w = ns.ones(2, requires_grad=True)
            >>> w.data.mul_(3)
            tensor([3., 3.])
            >>> w, w.data.requires_grad
            (tensor([3., 3.], requires_grad=True), False)
        """
        return Tensor._wrap(self.array, self.device)

    @data.setter
    def data(self, value: Any) -> None:
        if isinstance(value, Tensor):
            self.array, self.device = value.array, value.device
            return
        dev = backend.get_device("cuda") if backend.is_cupy_array(value) else self.device
        self.array, self.device = dev.xp.asarray(value), dev

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user (not by an op that records a graph)."""
        return self.creator is None

    @property
    def grad_fn(self) -> Function | None:
        """The :class:`Function` that produced this tensor, or None for leaves."""
        return self.creator

    @property
    def _version(self) -> int:
        return self._version_counter.value

    def size(self, dim: int | None = None) -> Any:
        """The shape, or its length along ``dim`` (as ``torch.Tensor.size``)."""
        return self.shape if dim is None else self.shape[dim]

    def numel(self) -> int:
        return int(self.array.size)

    def dim(self) -> int:
        return self.array.ndim

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self)):
            yield self[i]

    def __hash__(self) -> int:  # tensors are hashable by identity, as in PyTorch
        return id(self)

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(f"the truth value of a tensor with {self.array.size} elements is ambiguous")
        return bool(self.array.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self.dtype.kind not in "iub" or self.array.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = backend.to_numpy(self.array)
        return array if dtype is None else array.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(backend.to_numpy(self.array), separator=", ", prefix="tensor(")
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.dtype not in (dtypes.get_default_dtype(), int64, bool_) or self.array.size == 0:
            extras.append(f"dtype={self.dtype.name}")
        if self.creator is not None:
            extras.append(f"grad_fn=<{type(self.creator).__name__}Backward>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + body + "".join(", " + e for e in extras) + ")"

    # -- autograd --------------------------------------------------------------------------------
    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
    ) -> None:
        """Add the gradient of this tensor with respect to each leaf into the leaf's ``.grad``.

        Args:
            gradient: the gradient of the final objective with respect to this tensor; may be
                omitted for a single-element tensor (it is then 1).
            retain_graph: keep the graph so that backward can run through it again; defaults to
                ``create_graph``. Without it the graph is freed and a second backward raises.
            create_graph: record the backward pass, so that gradients can be differentiated again.
        """
        autograd.backward(self, gradient, retain_graph=retain_graph, create_graph=create_graph)

    def detach(self) -> Tensor:
        """A tensor sharing this one's data (and version counter) but cut from the graph."""
        t = Tensor._wrap(self.array, self.device)
        t._version_counter = self._version_counter
        if function_observers:  # a tracer sees the same value under a new tensor (function None)
            function_observers[-1](None, [self], [t])
        return t

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place (only on leaves); returns self."""
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_: cannot turn off requires_grad of a non-leaf tensor; use detach()")
        if requires_grad and self.dtype.kind not in "fc":
            raise RuntimeError(
                f"requires_grad: only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: the tensor does not require grad")
        self._retains_grad = True

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> Callable[[], None]:
        """Call ``hook(grad)`` when this tensor's total gradient is known; a returned tensor
        replaces the gradient. Returns a function that removes the hook."""
        if not self.requires_grad:
            raise RuntimeError("register_hook: cannot register a hook on a tensor that does not require grad")
        self._hooks.append(hook)
        return lambda: self._hooks.remove(hook) if hook in self._hooks else None

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> Callable[[], None]:
        """Call ``hook(tensor)`` once this leaf's ``.grad`` holds the whole gradient of a backward:
        backward runs it as soon as the last contribution arrives, not at the end (as PyTorch's, the
        hook :class:`~nnscratch.distributed.DistributedDataParallel` starts its all-reduce from).
        Returns a function that removes the hook.

        Example:
            >>> import nnscratch as ns
            >>> w = ns.ones(2, requires_grad=True)
            >>> remove = w.register_post_accumulate_grad_hook(lambda t: print("ready:", t.grad))
            >>> (w * 3).sum().backward()
            ready: tensor([3., 3.])
            >>> remove()
        """
        if not self.is_leaf or not self.requires_grad:
            raise RuntimeError(
                "register_post_accumulate_grad_hook: only a leaf tensor that requires grad has its gradient "
                f"accumulated (got is_leaf={self.is_leaf}, requires_grad={self.requires_grad})"
            )
        hooks = self.__dict__.setdefault("_post_accumulate_hooks", [])
        hooks.append(hook)
        autograd._post_hooked_leaves.count += 1

        def remove() -> None:
            if hook in hooks:
                hooks.remove(hook)
                autograd._post_hooked_leaves.count -= 1

        return remove

    # -- conversion ------------------------------------------------------------------------------
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if needed)."""
        if self.requires_grad:
            raise RuntimeError("numpy: the tensor requires grad; call tensor.detach().numpy() instead")
        return backend.to_numpy(self.array)

    def tolist(self) -> Any:
        return backend.to_numpy(self.array).tolist()

    def item(self) -> Any:
        """The value of a single-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(f"item: expected a tensor with one element, got shape {self.shape}")
        return backend.to_numpy(self.array).reshape(()).item()

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """Move to a device and/or cast to a dtype: ``t.to("cuda")``, ``t.to(ns.float64)``; with
        ``memory_format=ns.channels_last`` (or ``ns.contiguous_format``) also in that memory format."""
        device = kwargs.pop("device", None)
        dtype = kwargs.pop("dtype", None)
        memory_format = kwargs.pop("memory_format", None)
        if kwargs:
            raise TypeError(f"to: unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Device) or (isinstance(a, str) and a.split(":")[0] in backend.registered_devices()):
                device = a
            else:
                dtype = a
        out = self
        if dtype is not None and _as_dtype(dtype) != self.dtype:
            out = _ops.cast(out, _as_dtype(dtype))
        if device is not None and backend.get_device(device) != self.device:
            out = _ops.to_device(out, backend.get_device(device))
        if memory_format is not None:
            fmt = check_format(memory_format)
            out = out if fmt is preserve_format else _ops.contiguous(out, memory_format=fmt)
        return out

    def float(self) -> Tensor:
        """A float32 copy (differentiable), or self when already float32; likewise the casts below."""
        return self.to(float32)

    def double(self) -> Tensor:
        return self.to(float64)

    def half(self) -> Tensor:
        return self.to(float16)

    def long(self) -> Tensor:
        return self.to(int64)

    def int(self) -> Tensor:
        return self.to(int32)

    def short(self) -> Tensor:
        return self.to(dtypes.int16)

    def char(self) -> Tensor:
        return self.to(dtypes.int8)

    def byte(self) -> Tensor:
        return self.to(uint8)

    def bool(self) -> Tensor:
        return self.to(bool_)

    def type_as(self, other: Tensor) -> Tensor:
        """Cast to ``other``'s dtype (self when they already agree).

        Example:
            >>> import nnscratch as ns
            >>> ns.tensor([1, 2]).type_as(ns.zeros(1, dtype=ns.float64))
            tensor([1., 2.], dtype=float64)
        """
        if not isinstance(other, Tensor):
            raise TypeError(f"type_as: expected other to be a Tensor, got {type(other).__name__}")
        return self.to(other.dtype)

    def is_floating_point(self) -> bool:
        """Whether the dtype is a floating type (float16, float32, float64)."""
        return self.dtype.kind == "f"

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    # -- in-place operations ---------------------------------------------------------------------
    def _bump_version(self) -> None:
        self._version_counter.value += 1

    def _inplace(self, op: Callable[..., Tensor], *args: Any) -> Tensor:
        """Apply ``op(self, *args)`` and make the result this tensor's new value, in place.

        Without grad recording the data is simply overwritten (and the version counter bumped, so
        a function that saved this tensor for backward will refuse to run). With it, the graph is
        rewired: the old value becomes a hidden tensor that ``op`` consumed, and this tensor becomes
        the output of ``op``, so gradients still flow to whatever produced the old value.
        """
        recording = autograd.is_grad_enabled() and (
            self.requires_grad or any(isinstance(a, Tensor) and a.requires_grad for a in args)
        )
        if recording and self.is_leaf and self.requires_grad:
            raise RuntimeError(
                "a leaf tensor that requires grad is being used in an in-place operation; "
                "wrap the update in `with nnscratch.no_grad():`"
            )
        if recording and self.creator is not None and self.creator.is_view:
            raise RuntimeError(
                f"an in-place operation on a view (the output of {type(self.creator).__name__}) is not "
                "supported while recording the graph: it would change the base tensor without updating "
                "the base's gradient; apply it to the base, use an out-of-place operation, or clone() the view"
            )
        if not recording:
            with autograd.no_grad():
                result = op(self, *args)
            self._write(result.array)
            if function_observers:  # a tracer: this tensor now holds the op's result
                function_observers[-1](None, [result], [self])
            return self
        # The old value becomes a hidden tensor the op consumes. It gets its own copy of the data,
        # so functions that saved it still see the value they were given.
        old = Tensor._wrap(self.array.copy(), self.device)
        old.requires_grad, old.creator, old.generation = self.requires_grad, self.creator, self.generation
        old._version_counter.value = self._version
        if self.creator is not None:
            self.creator._replace_output(self, old)
        result = op(old, *args)
        self._write(result.array)
        self.requires_grad, self.creator, self.generation = True, result.creator, result.generation
        result.creator._replace_output(result, self)
        if function_observers:
            function_observers[-1](None, [result], [self])
        return self

    def _write(self, array: Any) -> None:
        if array.shape != self.array.shape:
            raise RuntimeError(
                f"in-place operation: the result has shape {tuple(array.shape)} but the tensor has "
                f"shape {self.shape} (in-place ops cannot broadcast the tensor itself)"
            )
        self.array[...] = array
        self._bump_version()

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._inplace(lambda s, o: s + o * alpha if alpha != 1 else s + o, other)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        return self._inplace(lambda s, o: s - o * alpha if alpha != 1 else s - o, other)

    def mul_(self, other: Any) -> Tensor:
        return self._inplace(lambda s, o: s * o, other)

    def div_(self, other: Any) -> Tensor:
        return self._inplace(lambda s, o: s / o, other)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        return self._inplace(lambda s: _ops.clip(s, min, max))

    # a select, not ``s * 0 + v``: NaN and inf in the old values (an ``empty`` tensor's) must not survive
    def copy_(self, src: Any) -> Tensor:
        return self._inplace(lambda s, o: _ops.where(False, s, o), src)

    def fill_(self, value: Any) -> Tensor:
        return self._inplace(lambda s: _ops.where(False, s, value))

    def zero_(self) -> Tensor:
        return self._inplace(lambda s: _ops.where(False, s, 0))

    def __setitem__(self, key: Any, value: Any) -> None:
        self._inplace(lambda s, v: _ops.index_put(s, key, v), value)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_


# --- Function -----------------------------------------------------------------------------------
#: Who watches every Function call: the newest observer is called as ``observer(function, inputs,
#: outputs)`` after each forward, with or without grad mode, and as ``observer(None, [source], [t])``
#: when ``t`` takes the value of ``source``: ``detach()``, and the in-place ops (``relu_``,
#: ``x[i] = v``). :mod:`nnscratch.onnx`'s tracer is one; an empty list (the normal case) costs one
#: test per op.
function_observers: list[Callable[[Function, list[Tensor], list[Tensor]], None]] = []


class Function:
    """One differentiable operation: subclass it and write ``forward`` and ``backward``.

    ``forward(*arrays)`` receives the inputs' raw arrays and returns an array (or a tuple).
    ``backward(*grads)`` receives one gradient Tensor per output and returns one per input (or
    ``None`` for inputs that need none), using Tensor operations so that it can be recorded.
    Inside ``backward``, ``self.inputs`` are the input Tensors and ``self.output(i)`` the outputs.

    Class attributes declare what backward reads, so that in-place changes are caught:
    ``saves_inputs`` (default True) and ``saves_outputs`` (default False). ``is_view`` marks ops
    whose output may share memory with the first input (reshape, transpose, ...): the output then
    shares the input's version counter. ``promotes_dtypes`` marks arithmetic whose integer and bool
    operands take the floating dtype of the others, as in PyTorch (NumPy alone would turn
    float32 + int64 into float64).

    Example (the cube, with its derivative written by hand)::

        class Cube(Function):
            def forward(self, x):
                return x ** 3
            def backward(self, gy):
                x, = self.inputs
                return gy * 3 * x ** 2
    """

    saves_inputs: bool = True
    saves_outputs: bool = False
    is_view: bool = False
    promotes_dtypes: bool = False

    inputs: list[Tensor] | None
    outputs: list[weakref.ref]

    def __call__(self, *inputs: Any) -> Any:
        tensors = [x for x in inputs if isinstance(x, Tensor)]
        if not tensors:
            raise TypeError(f"{type(self).__name__}: expected at least one Tensor argument")
        device = tensors[0].device
        for t in tensors[1:]:
            if t.device != device:
                raise RuntimeError(
                    f"expected all tensors to be on the same device, but found at least two devices, "
                    f"{device} and {t.device}"
                )
        like = tensors[0]
        inputs_t = [x if isinstance(x, Tensor) else _scalar_tensor(x, like) for x in inputs]
        self.device = device
        arrays = [x.array for x in inputs_t]
        if self.promotes_dtypes:
            arrays = _promote_to_float(arrays)
        try:
            ys = self.forward(*arrays)
        except ValueError as error:
            if "broadcast" not in str(error):
                raise
            shapes = " and ".join(str(tuple(a.shape)) for a in arrays if hasattr(a, "shape"))
            raise ValueError(f"{type(self).__name__}: the shapes {shapes} cannot be broadcast together") from None
        multiple = isinstance(ys, tuple)
        ys = ys if multiple else (ys,)
        outputs = [Tensor._wrap(y, device) for y in ys]
        if self.is_view:
            for out in outputs:
                out._version_counter = inputs_t[0]._version_counter
        if autograd.is_grad_enabled() and any(x.requires_grad for x in inputs_t):
            self.generation = max(x.generation for x in inputs_t)
            for out in outputs:
                if out.dtype.kind in "fc":
                    out.requires_grad = True
                    out.creator = self
                    out.generation = self.generation + 1
            self.inputs = inputs_t
            self.outputs = [weakref.ref(o) for o in outputs]
            self.output_shapes = [o.shape for o in outputs]
            self.output_dtypes = [o.dtype for o in outputs]
            self.saved_versions = (
                [x._version for x in inputs_t] if self.saves_inputs else None,
                [o._version for o in outputs] if self.saves_outputs else None,
            )
        if function_observers:  # a tracer (nnscratch.onnx.export) records this call
            function_observers[-1](self, inputs_t, outputs)
        return tuple(outputs) if multiple else outputs[0]

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, *gys: Tensor) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define backward")

    # -- used by backward implementations and by the engine --------------------------------------
    def output(self, i: int = 0) -> Tensor:
        """The i-th output tensor (kept alive by whoever still uses it)."""
        out = self.outputs[i]()
        if out is None:
            raise RuntimeError(f"{type(self).__name__}: output {i} was freed before backward")
        return out

    def _replace_output(self, old: Tensor, new: Tensor) -> None:
        for i, ref in enumerate(self.outputs):
            if ref() is old:
                self.outputs[i] = weakref.ref(new)
                saved_out = self.saved_versions[1]
                if saved_out is not None:  # an in-place op's output: its value is the one backward reads
                    saved_out[i] = new._version

    def check_saved_versions(self) -> None:
        """Raise if a tensor this function's backward reads was changed in place since forward."""
        saved_in, saved_out = self.saved_versions
        pairs: list[tuple[Tensor | None, int]] = []
        if saved_in is not None and self.inputs is not None:
            pairs += list(zip(self.inputs, saved_in))
        if saved_out is not None:
            pairs += [(ref(), v) for ref, v in zip(self.outputs, saved_out)]
        for t, version in pairs:
            if t is not None and t._version != version:
                raise RuntimeError(
                    "one of the tensors needed for gradient computation has been modified by an "
                    f"in-place operation: a tensor of shape {t.shape} used by {type(self).__name__} "
                    f"is at version {t._version}; expected version {version}. Use an out-of-place "
                    "operation, or clone() the tensor before changing it"
                )

    def release(self) -> None:
        """Drop references to the inputs: the graph behind this function is freed."""
        self.inputs = None


def _promote_to_float(arrays: list[Any]) -> list[Any]:
    """Cast the integer and bool arrays among float ones to the floats' common dtype."""
    floats = [a.dtype for a in arrays if a.dtype.kind == "f"]
    if not floats or len(floats) == len(arrays):
        return arrays
    common = np.result_type(*floats)
    return [a if a.dtype.kind == "f" else a.astype(common) for a in arrays]


def _scalar_tensor(value: Any, like: Tensor) -> Tensor:
    """A Python scalar (or array) as a Tensor beside ``like``, keeping ``like``'s float dtype."""
    if isinstance(value, int | float | bool | np.number | np.bool_) and not isinstance(value, np.ndarray):
        kind = like.dtype.kind
        if kind in "fc":
            dtype = like.dtype
        elif isinstance(value, float | np.floating):
            dtype = dtypes.get_default_dtype()
        elif isinstance(value, bool | np.bool_):
            dtype = like.dtype
        else:
            dtype = like.dtype if kind in "iu" else int64
        return Tensor._wrap(like.device.xp.asarray(value, dtype=dtype), like.device)
    return Tensor(value, device=like.device)


# The ops register themselves as Tensor methods; imported last because they import this module.
from nnscratch import ops as _ops  # noqa: E402

"""Every collective of the "mpi" backend against NumPy, on any number of ranks (the test runs 2).

Each rank builds every rank's input itself (``np.random.default_rng`` seeded by the rank and the
case), so every rank knows the expected result of each collective and checks its own. A mismatch
raises AssertionError; the process group's excepthook then aborts the whole job, so mpiexec exits
non-zero. Rank 0 prints "OK collectives" at the end.

Usage: mpiexec -n 2 python collectives.py
"""

import zlib

import numpy as np

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch.distributed import ReduceOp, Work

dist.init_process_group("mpi")
RANK, WORLD = dist.get_rank(), dist.get_world_size()

DTYPES = [np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_]
SHAPES = [(0,), (1,), (7,), (1001,), (100003,), (2, 0, 3), (1, 1, 1), (7, 1, 1), (7, 11, 13), (1, 100003, 1)]
OPS = [ReduceOp.SUM, ReduceOp.AVG, ReduceOp.PRODUCT, ReduceOp.MIN, ReduceOp.MAX]
#: (rtol, atol) of a floating-point result; the others must be exact.
TOLERANCE = {
    np.dtype(np.float16): (2e-3, 2e-3),  # one float16 ulp is ~1e-3 of the value
    np.dtype(np.float32): (1e-6, 1e-6),
    np.dtype(np.float64): (1e-12, 1e-12),
}
checks = 0


def is_float(dtype) -> bool:
    return np.dtype(dtype).kind == "f"


def input_of(rank: int, shape: tuple, dtype, case: str) -> np.ndarray:
    """Rank ``rank``'s input of ``case``: the same on every rank that builds it."""
    rng = np.random.default_rng([rank, zlib.crc32(case.encode())])
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return rng.uniform(0.5, 2.0, size=shape).astype(dtype) * rng.choice([-1, 1], size=shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(size=shape) < 0.5
    low = 0 if dtype.kind == "u" else -3
    return rng.integers(low, 4, size=shape).astype(dtype)  # small: products of every rank's fit


def inputs_of(shape: tuple, dtype, case: str) -> np.ndarray:
    """Every rank's input, stacked: (WORLD, *shape)."""
    return np.stack([input_of(r, shape, dtype, case) for r in range(WORLD)])


def expected_reduce(stack: np.ndarray, op: ReduceOp) -> np.ndarray:
    dtype = stack.dtype
    if dtype == np.bool_:
        return stack.any(axis=0) if op in (ReduceOp.SUM, ReduceOp.MAX) else stack.all(axis=0)
    wide = stack.astype(np.float64)  # floats: reduced exactly, rounded once
    if op is ReduceOp.SUM:
        return wide.sum(axis=0).astype(dtype) if is_float(dtype) else stack.sum(axis=0, dtype=dtype)
    if op is ReduceOp.AVG:
        return (wide.sum(axis=0) / WORLD).astype(dtype)
    if op is ReduceOp.PRODUCT:
        return wide.prod(axis=0).astype(dtype) if is_float(dtype) else stack.prod(axis=0, dtype=dtype)
    if op is ReduceOp.MIN:
        return stack.min(axis=0)
    return stack.max(axis=0)


def check(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    global checks
    checks += 1
    got, expected = np.asarray(got), np.asarray(expected)
    if got.shape != expected.shape or got.dtype != expected.dtype:
        raise AssertionError(
            f"rank {RANK}: {what}: got shape {got.shape} dtype {got.dtype}, expected {expected.shape} {expected.dtype}"
        )
    if expected.dtype in TOLERANCE:
        rtol, atol = TOLERANCE[expected.dtype]
        close = np.isclose(got.astype(np.float64), expected.astype(np.float64), rtol=rtol, atol=atol)
    else:
        close = got == expected
    if not close.all():
        bad = np.argwhere(~close)[:5]
        detail = ", ".join(
            f"at {tuple(map(int, b))} got {got[tuple(b)]!r} expected {expected[tuple(b)]!r}" for b in bad
        )
        raise AssertionError(f"rank {RANK}: {what}: {int((~close).sum())} of {close.size} elements differ: {detail}")


def describe(op_name: str, shape: tuple, dtype, kind: str) -> str:
    return f"{op_name} of shape {shape} {np.dtype(dtype).name} ({kind})"


# --- all_reduce: every dtype, shape and op, on a Tensor and on a raw array ----------------------
for dtype in DTYPES:
    for shape in SHAPES:
        for op in OPS:
            case = f"all_reduce {op.name} {shape} {np.dtype(dtype).name}"
            stack = inputs_of(shape, dtype, case)
            if op is ReduceOp.AVG and not is_float(dtype):
                raw = stack[RANK].copy()
                try:
                    dist.all_reduce(raw, op=op)
                except TypeError as error:
                    assert "AVG" in str(error), f"rank {RANK}: {case}: TypeError does not name AVG: {error}"
                else:
                    raise AssertionError(f"rank {RANK}: {case}: AVG on {np.dtype(dtype).name} did not raise TypeError")
                assert np.array_equal(raw, stack[RANK]), f"rank {RANK}: {case}: the refused AVG changed the array"
                continue
            expected = expected_reduce(stack, op)
            raw = stack[RANK].copy()
            assert dist.all_reduce(raw, op=op) is None, f"rank {RANK}: {case}: a blocking all_reduce returned a value"
            check(raw, expected, describe(f"all_reduce({op.name})", shape, dtype, "array"))
            tensor = ns.tensor(stack[RANK])
            version = tensor._version
            dist.all_reduce(tensor, op=op)
            check(tensor.array, expected, describe(f"all_reduce({op.name})", shape, dtype, "Tensor"))
            assert tensor._version > version, f"rank {RANK}: {case}: the Tensor's version was not bumped"

# --- non-contiguous inputs: a transposed view and a strided slice of a raw array ---------------
for dtype in DTYPES:
    for op in (ReduceOp.SUM, ReduceOp.MAX, ReduceOp.MIN):
        case = f"non-contiguous {op.name} {np.dtype(dtype).name}"
        stack = inputs_of((13, 9), dtype, case)
        base = stack[RANK].copy()
        view = base.T  # (9, 13), F-ordered
        assert not view.flags.c_contiguous
        dist.all_reduce(view, op=op)
        check(view, expected_reduce(stack, op).T, describe(f"all_reduce({op.name})", (9, 13), dtype, "transposed view"))
        check(base, expected_reduce(stack, op), f"the base of a transposed view after all_reduce({op.name}), {case}")
        base = stack[RANK].copy()
        dist.all_reduce(base[::2, 1::3], op=op)
        expected = stack[RANK].copy()
        expected[::2, 1::3] = expected_reduce(stack, op)[::2, 1::3]
        check(base, expected, f"an array whose strided slice was all-reduced ({op.name}), {case}")

    case = f"non-contiguous broadcast {np.dtype(dtype).name}"
    stack = inputs_of((5, 7, 3), dtype, case)
    base = stack[RANK].copy()
    view = base.transpose(2, 0, 1)
    dist.broadcast(view, src=WORLD - 1)
    check(base, stack[WORLD - 1], f"the base of a transposed view after broadcast, {case}")

    case = f"non-contiguous all_gather {np.dtype(dtype).name}"
    stack = inputs_of((6, 4), dtype, case)
    view = stack[RANK].T
    parts = [np.zeros((4, 6), dtype=dtype) for _ in range(WORLD)]
    dist.all_gather(parts, view)
    for r in range(WORLD):
        check(parts[r], stack[r].T, f"all_gather of a transposed view, part {r}, {case}")
    out = np.zeros((WORLD, 4, 6), dtype=dtype)
    dist.all_gather_into_tensor(out, view)
    check(out, stack.transpose(0, 2, 1), f"all_gather_into_tensor of a transposed view, {case}")

# float16 is reduced in float32: an average whose sum overflows float16 (inf) still comes out right
big = np.full(5, 40000.0, dtype=np.float16)
dist.all_reduce(big, op=ReduceOp.AVG)
check(big, np.full(5, 40000.0, dtype=np.float16), "float16 AVG of 40000 on every rank (the sum is past float16's max)")

# --- async_op=True: a Work to wait on -----------------------------------------------------------
for dtype in (np.float32, np.int64, np.bool_):
    case = f"async all_reduce {np.dtype(dtype).name}"
    stack = inputs_of((1001,), dtype, case)
    tensor = ns.tensor(stack[RANK])
    work = dist.all_reduce(tensor, op=ReduceOp.MAX, async_op=True)
    assert isinstance(work, Work), f"rank {RANK}: {case}: async_op=True returned {work!r}, not a Work"
    assert work.wait() is True, f"rank {RANK}: {case}: Work.wait() did not return True"
    assert work.is_completed(), f"rank {RANK}: {case}: is_completed() is False after wait()"
    check(tensor.array, expected_reduce(stack, ReduceOp.MAX), case)
    assert work.wait() is True, f"rank {RANK}: {case}: a second wait() did not return True"

case = "async all_reduce polled"
stack = inputs_of((100003,), np.float64, case)
raw = stack[RANK].copy()
work = dist.all_reduce(raw, op=ReduceOp.AVG, async_op=True)
while not work.is_completed():  # polling alone completes it
    pass
check(raw, expected_reduce(stack, ReduceOp.AVG), case)
assert work.wait(timeout=60) is True

case = "async all_reduce float16 (staged in float32)"
stack = inputs_of((7, 11, 13), np.float16, case)
raw = stack[RANK].copy()
work = dist.all_reduce(raw, op=ReduceOp.SUM, async_op=True)
work.wait()
check(raw, expected_reduce(stack, ReduceOp.SUM), case)

case = "async broadcast / all_gather / all_gather_into_tensor / barrier"
stack = inputs_of((7, 1, 1), np.int32, case)
raw = stack[RANK].copy()
works = [dist.broadcast(raw, src=WORLD - 1, async_op=True)]
parts = [ns.zeros(7, 1, 1, dtype=ns.int32) for _ in range(WORLD)]
source = ns.tensor(stack[RANK])
works.append(dist.all_gather(parts, source, async_op=True))
out = np.zeros((WORLD * 7, 1, 1), dtype=np.int32)
works.append(dist.all_gather_into_tensor(out, stack[RANK], async_op=True))
works.append(dist.barrier(async_op=True))
for work in works:
    assert isinstance(work, Work), f"rank {RANK}: {case}: got {work!r}, not a Work"
    work.wait()
    assert work.is_completed(), f"rank {RANK}: {case}: is_completed() is False after wait()"
check(raw, stack[WORLD - 1], "async broadcast")
for r in range(WORLD):
    check(parts[r].array, stack[r], f"async all_gather, part {r}")
check(out, stack.reshape(WORLD * 7, 1, 1), "async all_gather_into_tensor")

# --- broadcast, all_gather, all_gather_into_tensor: every dtype and shape ---------------------
for dtype in DTYPES:
    for shape in SHAPES:
        for src in range(WORLD):
            case = f"broadcast src={src} {shape} {np.dtype(dtype).name}"
            stack = inputs_of(shape, dtype, case)
            raw = stack[RANK].copy()
            assert dist.broadcast(raw, src=src) is None
            check(raw, stack[src], case + " (array)")
            tensor = ns.tensor(stack[RANK])
            dist.broadcast(tensor, src)
            check(tensor.array, stack[src], case + " (Tensor)")

        case = f"all_gather {shape} {np.dtype(dtype).name}"
        stack = inputs_of(shape, dtype, case)
        parts = [ns.tensor(np.zeros(shape, dtype=dtype)) for _ in range(WORLD)]
        assert dist.all_gather(parts, ns.tensor(stack[RANK])) is None
        for r in range(WORLD):
            check(parts[r].array, stack[r], f"{case}, part {r} (Tensors)")
        raw_parts = [np.zeros(shape, dtype=dtype) for _ in range(WORLD)]
        dist.all_gather(raw_parts, stack[RANK])
        for r in range(WORLD):
            check(raw_parts[r], stack[r], f"{case}, part {r} (arrays)")

        case = f"all_gather_into_tensor {shape} {np.dtype(dtype).name}"
        stack = inputs_of(shape, dtype, case)
        out = ns.tensor(np.zeros((WORLD, *shape), dtype=dtype))
        assert dist.all_gather_into_tensor(out, ns.tensor(stack[RANK])) is None
        check(out.array, stack, case + " (stacked)")
        flat = np.zeros((WORLD * shape[0], *shape[1:]), dtype=dtype)
        dist.all_gather_into_tensor(flat, stack[RANK])
        check(flat, np.concatenate(list(stack)), case + " (concatenated)")

# --- objects ------------------------------------------------------------------------------------
gathered = [None] * WORLD
mine = {"rank": RANK, "array": input_of(RANK, (3, 4), np.float64, "objects"), "s": "x" * RANK}
dist.all_gather_object(gathered, mine)
for r, got in enumerate(gathered):
    assert got["rank"] == r and got["s"] == "x" * r, f"rank {RANK}: all_gather_object: slot {r} holds {got!r}"
    check(got["array"], input_of(r, (3, 4), np.float64, "objects"), f"all_gather_object: the array of slot {r}")
gathered = [None] * WORLD
dist.all_gather_object(gathered, None)
assert gathered == [None] * WORLD, f"rank {RANK}: all_gather_object of None gave {gathered!r}"

for src in range(WORLD):
    objects = [{"from": RANK}, f"rank {RANK}", list(range(RANK * 1000))] if RANK == src else [None, None, None]
    dist.broadcast_object_list(objects, src=src)
    expected = [{"from": src}, f"rank {src}", list(range(src * 1000))]
    assert objects == expected, f"rank {RANK}: broadcast_object_list from {src}: got {str(objects)[:200]}"

# --- barrier ------------------------------------------------------------------------------------
assert dist.barrier() is None
dist.barrier()

# everyone finished every check: compare the counts, so no rank skipped one
counts = np.array([checks], dtype=np.int64)
dist.all_reduce(counts, op=ReduceOp.MIN)
assert counts[0] == checks, f"rank {RANK}: ran {checks} checks, some rank only {counts[0]}"
dist.destroy_process_group()
if RANK == 0:
    print(f"OK collectives ({checks} checks on {WORLD} ranks)")

"""fit() on however many ranks mpiexec starts: a float64 CNN on seeded arrays, global batch 32.

Usage: fit_run.py OUT_DIR EPOCHS DROPOUT [RESUME_FROM]. DROPOUT 0 makes the run independent of the
rank count (dropout draws differ: each rank masks its own samples). Rank 0 writes OUT_DIR/params.npz (the final
parameters) and OUT_DIR/history.json; ModelCheckpoint writes OUT_DIR/last.ckpt.npz every epoch.
"""

import json
import os
import sys

import numpy as np

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch import nn, optim
from nnscratch.train import callbacks as cb

out, epochs, dropout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
resume = sys.argv[4] if len(sys.argv) > 4 else None
dist.init_process_group("mpi")
ns.config.set_default_impl("reference")  # the NumPy tier: no JIT compilation in the workers
ns.manual_seed(0)
model = nn.Sequential(
    nn.Conv2d(1, 3, 3, padding=1),
    nn.SyncBatchNorm(3),
    nn.ReLU(),
    nn.Dropout(dropout),
    nn.Flatten(),
    nn.Linear(3 * 5 * 5, 4),
).to(ns.float64)
data = np.random.default_rng(1)
x = data.normal(size=(150, 1, 5, 5))
y = data.integers(0, 4, size=150)
val = (data.normal(size=(37, 1, 5, 5)), data.integers(0, 4, size=37))
history = ns.train.fit(
    model,
    (x, y),
    epochs=epochs,
    batch_size=32,
    optimizer=optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
    loss_fn=nn.CrossEntropyLoss(),
    val_data=val,
    callbacks=[
        cb.ModelCheckpoint(os.path.join(out, "last.ckpt.npz")),
        cb.CSVLogger(os.path.join(out, f"log{dist.get_rank()}.csv")),
    ],
    resume_from=resume,
    verbose=0,
    seed=0,
)
if dist.get_rank() == 0:
    np.savez(os.path.join(out, "params.npz"), **{k: v.numpy() for k, v in model.state_dict().items()})
    with open(os.path.join(out, "history.json"), "w") as f:
        json.dump(history.history, f)
dist.destroy_process_group()

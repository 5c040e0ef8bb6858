"""A distributed fit in which rank 1 fails during epoch 2: MODE ``raise`` (an exception) or ``kill``
(SIGKILL, no Python code runs). Usage: faults.py MODE OUT_DIR.

Every rank prints ``rank R pid P`` first, so the test can match the launcher's report to the rank.
ModelCheckpoint writes OUT_DIR/last.ckpt.npz after epoch 1: it must stay whole.
"""

import os
import signal
import sys

import numpy as np

import nnscratch as ns
import nnscratch.distributed as dist
from nnscratch import nn, optim
from nnscratch.train import callbacks as cb

mode, out = sys.argv[1], sys.argv[2]
dist.init_process_group("mpi", timeout=20)
rank = dist.get_rank()
print(f"rank {rank} pid {os.getpid()}", flush=True)
ns.config.set_default_impl("reference")


class FailOnRankOne(cb.Callback):
    def on_batch_end(self, batch, logs):
        if rank == 1 and self.trainer.epoch == 1 and batch == 2:
            if mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise ValueError("rank 1 fails on purpose")


model = nn.Sequential(nn.Flatten(), nn.Linear(25, 4))
data = np.random.default_rng(1)
x, y = data.normal(size=(256, 1, 5, 5)).astype(np.float32), data.integers(0, 4, size=256)
ns.train.fit(
    model,
    (x, y),
    epochs=3,
    batch_size=32,
    optimizer=optim.SGD(model.parameters(), lr=0.05),
    loss_fn=nn.CrossEntropyLoss(),
    callbacks=[cb.ModelCheckpoint(os.path.join(out, "last.ckpt.npz")), FailOnRankOne()],
    verbose=0,
    seed=0,
)
print(f"rank {rank} finished: the fault did not stop it", flush=True)

"""``nnscratch.train``: fit / evaluate / predict, callbacks, History and checkpoints.

The same loop serves any Module (``train.fit(model, ...)``) and the Keras-style methods of
:class:`train.Sequential <nnscratch.train.keras.Sequential>` (``model.compile(...)`` then
``model.fit(x, y)``; :class:`~nnscratch.train.keras.KerasMixin` gives them to any Module).

Example:
    >>> import numpy as np
    >>> from nnscratch import nn, optim, train
    >>> x = np.random.default_rng(0).normal(size=(60, 2)).astype(np.float32)
    >>> y = (x.sum(1) > 0).astype(np.int64)
    >>> model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 2))
    >>> history = train.fit(model, (x, y), epochs=3, optimizer=optim.Adam(model.parameters(), lr=0.01),
    ...                     loss_fn=nn.CrossEntropyLoss(), validation_split=0.2, verbose=0, seed=0)
    >>> sorted(history.history)[:3]
    ['accuracy', 'epoch_time', 'loss']
"""

from nnscratch.serialization import CheckpointError
from nnscratch.train import callbacks
from nnscratch.train.batches import build
from nnscratch.train.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    TerminateOnNaN,
)
from nnscratch.train.checkpoint import CheckpointSaveError, load_checkpoint, save_checkpoint
from nnscratch.train.evaluation import evaluate, predict
from nnscratch.train.history import History
from nnscratch.train.keras import KerasMixin, Sequential
from nnscratch.train.loop import Trainer, fit
from nnscratch.train.progress import ProgressBar

__all__ = [
    "CSVLogger",
    "Callback",
    "CheckpointError",
    "CheckpointSaveError",
    "EarlyStopping",
    "History",
    "KerasMixin",
    "LearningRateMonitor",
    "ModelCheckpoint",
    "ProgressBar",
    "Sequential",
    "TerminateOnNaN",
    "Trainer",
    "build",
    "callbacks",
    "evaluate",
    "fit",
    "load_checkpoint",
    "predict",
    "save_checkpoint",
]

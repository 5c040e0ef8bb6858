"""ProgressBar: what fit() shows while it trains, on a terminal and in a log file.

* On a terminal (the stream is a TTY) a tqdm bar per epoch, with the epoch's running mean of the
  loss and of every metric so far (the numbers the History records at the end of the epoch) and the
  images per second.
* Elsewhere (CI logs, ``nohup``, a notebook captured to a file) no bar: one line every
  ``every_n_batches`` batches or every ``every_s`` seconds (default 30 s), then one line per epoch.
* The first compilation of the CPU kernels (Numba: 20 s for simple_cnn, 26 s for resnet20 on 2 cores
  with a cold cache; cached on disk afterwards) is announced by one line, ``compiling kernels (first
  run only, ~20-30 s) ...``, printed when Numba starts compiling one of nnscratch's cached kernels
  (Numba's ``numba:compile`` event fires only on a real compilation, not when a kernel is loaded
  from the cache, so a warm cache prints nothing), once per process.

Example:
    >>> import io, numpy as np
    >>> from nnscratch import nn, optim, train
    >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    >>> y = (x.sum(1) > 0).astype(np.int64)
    >>> model = nn.Sequential(nn.Linear(2, 2))
    >>> log = io.StringIO()  # not a terminal: lines, no bar
    >>> _ = train.fit(model, (x, y), epochs=1, optimizer=optim.SGD(model.parameters(), lr=0.1),
    ...               loss_fn=nn.CrossEntropyLoss(), batch_size=16, seed=0,
    ...               callbacks=[train.ProgressBar(file=log, every_n_batches=2)])
    >>> [line.split(":")[0] for line in log.getvalue().splitlines()]
    ['epoch 1/1 batch 2/4', 'epoch 1/1 batch 4/4', 'epoch 1/1']
"""

from __future__ import annotations

import sys
import time
from typing import Any

from nnscratch.train.callbacks import Callback

COMPILE_NOTICE = "compiling kernels (first run only, ~20-30 s) ..."
_SHORT = {"accuracy": "acc"}  # names shortened on the bar
_clock = time.monotonic  # the time source of the periodic lines (a test replaces it)
_announced = False  # the compile notice was printed by this process


def _announce(stream: Any, bar: Any) -> None:
    global _announced
    if _announced:
        return
    _announced = True
    if bar is not None:
        bar.write(COMPILE_NOTICE, file=stream)
    else:
        print(COMPILE_NOTICE, file=stream, flush=True)


class _CompileListener:
    """Announces the first Numba compilation of an nnscratch kernel while it starts."""

    def __init__(self, progress: ProgressBar) -> None:
        from numba.core import event
        from numba.core.caching import NullCache

        class Listener(event.Listener):
            def on_start(self, ev: Any) -> None:
                dispatcher = ev.data.get("dispatcher")
                module = getattr(getattr(dispatcher, "py_func", None), "__module__", "")
                # A cached kernel compiling means a cold cache: the slow first run, not a later one.
                if module.startswith("nnscratch.") and not isinstance(getattr(dispatcher, "_cache", None), NullCache):
                    _announce(progress._stream(), progress._bar)

            def on_end(self, ev: Any) -> None:
                pass

        self._event, self._listener = event, Listener()
        event.register("numba:compile", self._listener)

    def remove(self) -> None:
        self._event.unregister("numba:compile", self._listener)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressBar(Callback):
    """A tqdm bar per epoch on a terminal, periodic lines elsewhere, and one line per epoch.

    The bar and the lines show the epoch's running means (sample-weighted, as the History's epoch
    values), images per second and, off a terminal, the time left in the epoch. fit() adds one when
    ``verbose > 0`` and none is given.

    Args:
        verbose: 0 silent, 1 bar on a TTY and periodic lines elsewhere, 2 epoch lines only.
        file: where to write (default: ``sys.stderr``).
        every_n_batches: off a terminal, a line every this many batches (default None: by time only).
        every_s: off a terminal, a line when this many seconds passed since the last (default 30;
            None: by batches only).

    Example:
        >>> ProgressBar(every_n_batches=100, every_s=None).every_n_batches
        100
    """

    order = 60
    rank_zero_only = True

    def __init__(
        self, verbose: int = 1, file: Any = None, every_n_batches: int | None = None, every_s: float | None = 30.0
    ) -> None:
        if every_n_batches is not None and (isinstance(every_n_batches, bool) or int(every_n_batches) < 1):
            raise ValueError(f"every_n_batches: expected a positive int or None, got {every_n_batches!r}")
        if every_s is not None and not every_s > 0:
            raise ValueError(f"every_s: expected a positive number of seconds or None, got {every_s!r}")
        self.verbose, self.file = int(verbose), file
        self.every_n_batches = None if every_n_batches is None else int(every_n_batches)
        self.every_s = None if every_s is None else float(every_s)
        self._bar: Any = None
        self._listener: _CompileListener | None = None
        self._epoch_start = self._last_line = 0.0
        self._samples = 0  # seen since on_epoch_begin (a resumed epoch starts partway)
        self._first_batch = 0  # the batch the epoch (re)started at

    def _stream(self) -> Any:
        return self.file if self.file is not None else sys.stderr

    def _use_bar(self) -> bool:
        stream = self._stream()
        return self.verbose == 1 and hasattr(stream, "isatty") and stream.isatty()

    def running_means(self) -> dict[str, float]:
        """The epoch's loss and metrics so far, weighted by batch size: the History's epoch values."""
        p = self.trainer.progress
        n = max(p["samples"], 1.0)
        return {"loss": p["loss"] / n, **{name: p[name] / n for name, _ in self.trainer.metric_fns}}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.verbose > 0 and not _announced and self._listener is None:
            self._listener = _CompileListener(self)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = self._last_line = _clock()
        self._samples, self._first_batch = 0, self.trainer.batch
        if self._use_bar():
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=len(self.trainer.train_loader),
                initial=self.trainer.batch,
                file=self._stream(),
                leave=True,
                desc=f"epoch {epoch + 1}/{self.trainer.epochs}",
                unit="batch",
                dynamic_ncols=True,
            )

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        self._samples += int(logs["size"])
        if self._bar is not None:
            rate = self._bar.format_dict.get("rate") or 0.0
            postfix = {
                _SHORT.get(k, k): f"{v:.4f}" if k == "loss" else f"{v:.3f}" for k, v in self.running_means().items()
            }
            postfix["img/s"] = f"{rate * logs['size']:.0f}"
            self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(1)
        elif self.verbose == 1 and self._line_due(batch + 1):
            self._print_line(batch + 1)

    def _line_due(self, done: int) -> bool:
        if self.every_n_batches is not None and done % self.every_n_batches == 0:
            return True
        return self.every_s is not None and _clock() - self._last_line >= self.every_s

    def _print_line(self, done: int) -> None:
        now = _clock()
        self._last_line = now
        total = len(self.trainer.train_loader)
        elapsed = max(now - self._epoch_start, 1e-9)
        rate = self._samples / elapsed  # images per second
        eta = elapsed / max(done - self._first_batch, 1) * (total - done)
        means = " ".join(f"{k}={v:.4f}" for k, v in self.running_means().items())
        print(
            f"epoch {self.trainer.epoch + 1}/{self.trainer.epochs} batch {done}/{total}: {means} "
            f"{rate:.0f} img/s, epoch eta {_duration(eta)}",
            file=self._stream(),
            flush=True,
        )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.verbose > 0:
            shown = {k: v for k, v in logs.items() if not k.startswith("lr_pg")}
            parts = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()]
            print(f"epoch {epoch + 1}/{self.trainer.epochs}: " + " ".join(parts), file=self._stream(), flush=True)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._listener is not None:
            self._listener.remove()
            self._listener = None

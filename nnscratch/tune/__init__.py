"""``nnscratch.tune``: tune hyperparameters on the validation split, then measure the test split once.

- :func:`lr_find`: the learning-rate range test (Smith 2017), which puts the model back afterwards.
- :func:`search`: a hyperparameter search delegated to Optuna (the ``tune`` extra): TPE sampling,
  median pruning fed by each epoch's validation score, seeded, resumable from SQLite, within a time
  budget; it reads the train and validation splits only.
- :func:`retrain_best`: train the best configuration on train + validation, then evaluate the test
  split, once.
- :class:`DataSplits`, :class:`Trainable` and the distributions :func:`loguniform`, :func:`uniform`,
  :func:`randint`, :func:`choice` (Ray Tune's names) describe what is searched.
"""

from nnscratch.tune.lr_finder import LRFinderResult, lr_find, suggest_lr
from nnscratch.tune.results import SearchResult
from nnscratch.tune.retrain import RetrainResult, retrain_best
from nnscratch.tune.search import search
from nnscratch.tune.space import (
    Choice,
    Distribution,
    LogUniform,
    RandInt,
    Uniform,
    choice,
    loguniform,
    randint,
    uniform,
)
from nnscratch.tune.splits import DataSplits
from nnscratch.tune.trainable import Trainable

__all__ = [
    "Choice",
    "DataSplits",
    "Distribution",
    "LRFinderResult",
    "LogUniform",
    "RandInt",
    "RetrainResult",
    "SearchResult",
    "Trainable",
    "Uniform",
    "choice",
    "loguniform",
    "lr_find",
    "randint",
    "retrain_best",
    "search",
    "suggest_lr",
    "uniform",
]

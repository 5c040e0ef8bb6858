"""``nnscratch.robust``: adversarial attacks, adversarial training and robustness reports.

- :mod:`~nnscratch.robust.attacks`: ``fgsm``, ``pgd`` (L-inf and L2), ``accuracy_under_attack``.
- :mod:`~nnscratch.robust.adversarial`: the ``AdversarialTraining`` callback and ``adversarial_fit``.
- :mod:`~nnscratch.robust.report`: ``robustness_report`` over the corruptions of
  :mod:`nnscratch.data.corruptions`, and its ``Report`` (markdown card, heat map).
- :mod:`~nnscratch.robust.plotting`: heat maps, curves and image grids as PNG (matplotlib, the
  ``plot`` extra).

Every function feeds the model raw images in [0, 1] (uint8 images are divided by 255); a model that
wants normalised inputs does it itself with :class:`NormalizeInputs` as its first layer.

Example:
    >>> import numpy as np
    >>> from nnscratch import nn
    >>> from nnscratch.robust import accuracy_under_attack
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    >>> x = np.random.default_rng(0).random((8, 1, 2, 2), dtype=np.float32)
    >>> sorted(accuracy_under_attack(model, (x, np.zeros(8, np.int64)), "fgsm", [0.0, 0.1]))
    [0.0, 0.1]
"""

from nnscratch.robust.adversarial import AdversarialBatches, AdversarialTraining, adversarial_fit
from nnscratch.robust.attacks import ATTACKS, accuracy_under_attack, fgsm, input_gradient, pgd, project
from nnscratch.robust.layers import NormalizeInputs
from nnscratch.robust.report import Report, robustness_report

__all__ = [
    "ATTACKS",
    "AdversarialBatches",
    "AdversarialTraining",
    "NormalizeInputs",
    "Report",
    "accuracy_under_attack",
    "adversarial_fit",
    "fgsm",
    "input_gradient",
    "pgd",
    "project",
    "robustness_report",
]

"""``nnscratch.robust``: adversarial attacks, adversarial training and robustness reports.

- :mod:`~nnscratch.robust.attacks`: ``fgsm``, ``pgd`` (L-inf and L2), ``accuracy_under_attack``.
- :mod:`~nnscratch.robust.adversarial`: the ``AdversarialTraining`` callback and ``adversarial_fit``.
- :mod:`~nnscratch.robust.report`: ``robustness_report`` over the corruptions of
  :mod:`nnscratch.data.corruptions`, and its ``Report`` (markdown card, heat map).

Every function feeds the model raw images in [0, 1] (uint8 images are divided by 255); a model that
wants normalised inputs does it itself with :class:`NormalizeInputs` as its first layer.
"""

from nnscratch.robust.attacks import ATTACKS, accuracy_under_attack, fgsm, input_gradient, pgd, project
from nnscratch.robust.layers import NormalizeInputs

__all__ = ["ATTACKS", "NormalizeInputs", "accuracy_under_attack", "fgsm", "input_gradient", "pgd", "project"]

"""``nn.utils.fuse_conv_bn``: eval-mode BatchNorm folded into the convolution before it, same outputs."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models, nn

from ..model_helpers import randomise_batch_norms


def batch_norms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def outputs(model: nn.Module, x: ns.Tensor) -> np.ndarray:
    with ns.no_grad():
        return model(x).numpy()


@pytest.mark.parametrize("name", [*models.MODELS, "simple_cnn"])
def test_every_zoo_model_gives_the_same_outputs_with_no_batch_norm_after_a_conv(name: str) -> None:
    ns.manual_seed(0)
    model = randomise_batch_norms(models.get(name) if name != "simple_cnn" else models.simple_cnn()).eval()
    fused = nn.utils.fuse_conv_bn(model)
    assert batch_norms(fused) == 0
    x = ns.randn(3, 3, 32, 32)
    expected = outputs(model, x)
    np.testing.assert_allclose(outputs(fused, x), expected, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(expected).max()))


def test_the_model_itself_is_unchanged_unless_inplace() -> None:
    model = randomise_batch_norms(models.resnet20()).eval()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    nn.utils.fuse_conv_bn(model)
    assert batch_norms(model) == 21
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])
    same = nn.utils.fuse_conv_bn(model, inplace=True)
    assert same is model and batch_norms(model) == 0


def test_without_affine_and_with_a_conv_bias() -> None:
    model = randomise_batch_norms(nn.Sequential(nn.Conv2d(3, 4, 3, bias=True), nn.BatchNorm2d(4, affine=False)))
    model.eval()
    fused = nn.utils.fuse_conv_bn(model, ns.randn(1, 3, 6, 6))
    assert len(fused) == 1 and fused[0].bias is not None
    x = ns.randn(2, 3, 6, 6)
    np.testing.assert_allclose(outputs(fused, x), outputs(model, x), rtol=1e-5, atol=1e-5)


def test_a_conv_output_read_twice_or_a_norm_after_something_else_is_left_alone() -> None:
    class TwoReaders(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)
            self.pool, self.bn_after_pool = nn.MaxPool2d(2), nn.BatchNorm2d(3)

        def forward(self, x: ns.Tensor) -> ns.Tensor:
            y = self.conv(x)
            return self.bn(y) + y + self.bn_after_pool(self.pool(x)).mean()

    model = randomise_batch_norms(TwoReaders()).eval()
    fused = nn.utils.fuse_conv_bn(model, ns.randn(1, 3, 4, 4))
    assert batch_norms(fused) == 2
    x = ns.randn(2, 3, 4, 4)
    np.testing.assert_allclose(outputs(fused, x), outputs(model, x), rtol=1e-6)


def test_a_conv_output_changed_in_place_before_the_norm_is_left_alone() -> None:
    class ReluInBetween(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3)

        def forward(self, x: ns.Tensor) -> ns.Tensor:
            y = self.conv(x)
            y.relu_()
            return self.bn(y)

    model = randomise_batch_norms(ReluInBetween()).eval()
    fused = nn.utils.fuse_conv_bn(model, ns.randn(1, 3, 4, 4))
    assert batch_norms(fused) == 1
    x = ns.randn(2, 3, 4, 4)
    np.testing.assert_allclose(outputs(fused, x), outputs(model, x), rtol=1e-6)


def test_frozen_weights_stay_frozen() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    model[0].weight.requires_grad_(False)
    model[0].bias.requires_grad_(False)
    fused = nn.utils.fuse_conv_bn(model, ns.randn(1, 3, 5, 5))
    assert not fused[0].weight.requires_grad and isinstance(fused[0].weight, nn.Parameter)


def test_a_model_in_training_mode_or_without_an_example_is_refused() -> None:
    with pytest.raises(ValueError, match="model: expected a model in eval mode .* call model.eval\\(\\) first"):
        nn.utils.fuse_conv_bn(models.resnet20())
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    with pytest.raises(ValueError, match="example_input: expected a Tensor for a model without input_shape"):
        nn.utils.fuse_conv_bn(plain)


def test_predict_folds_batch_norm_and_gives_the_same_outputs() -> None:
    ns.manual_seed(0)
    model = randomise_batch_norms(models.resnet20())
    model.train()
    x = np.random.default_rng(0).standard_normal((7, 3, 32, 32)).astype(np.float32)
    fused = ns.train.predict(model, x, batch_size=4)
    plain = ns.train.predict(model, x, batch_size=4, fuse_bn=False)
    np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-5)
    assert model.training and batch_norms(model) == 21

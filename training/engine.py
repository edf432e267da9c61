"""The training loop both tasks share: AdamW, warm-up + cosine schedule, early stopping,
mixed precision on CUDA, and resumable checkpoints.

A checkpoint (``<bundle>/.checkpoint/last.pt``) is written after every epoch with the
model, optimizer, scheduler, grad-scaler, best-so-far weights, early-stopping counter,
history and torch RNG state, plus a fingerprint of everything that shapes the run
(data split, classes, hyper-parameters).  ``resume`` continues from it only when the
fingerprint matches, so a resumed run is the run that was interrupted.

Data order and augmentation are seeded from (seed, epoch[, index]) rather than drawn from
a running RNG, so a resumed epoch sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn
from torch.optim import AdamW
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    LinearLR,
    LRScheduler,
    SequentialLR,
)
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from core.fileio import atomic_write
from pipeline.models.bundle import (
    ARCHITECTURES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    BundleManifest,
    ClassMetrics,
    save_bundle,
)
from pipeline.models.device import resolve_device
from training.augment import AugmentConfig
from training.evaluation import ClassificationEvaluation, SegmentationEvaluation
from training.model_card import write_model_card

__all__ = [
    "CHECKPOINT_DIR",
    "CHECKPOINT_FILE",
    "CheckpointError",
    "FitOutcome",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "build_scheduler",
    "data_summary",
    "file_list_digest",
    "fit",
    "publish",
    "resolve_device",
    "round_to_half",
]

log = logging.getLogger(__name__)

CHECKPOINT_DIR = ".checkpoint"
CHECKPOINT_FILE = "last.pt"
_CHECKPOINT_FORMAT = 1
# Fields that do not change what is learned, so a resume may alter them.
# (``keep`` only picks which of the run's weights are published.)
_NOT_FINGERPRINTED = {"data", "out", "resume", "name", "version", "device", "workers", "progress", "patience", "keep"}


class CheckpointError(ValueError):
    """A checkpoint cannot be resumed (different run, or unreadable)."""


class TrainConfig(BaseModel):
    """Settings common to every task; field names mirror the ``dermq train`` flags."""

    model_config = ConfigDict(extra="forbid")

    data: Path
    out: Path
    epochs: int = Field(default=30, ge=1)
    input_size: int = Field(default=224, ge=32, le=2048)
    batch_size: int = Field(default=32, ge=2)
    lr: float = Field(default=1e-3, gt=0)
    weight_decay: float = Field(default=0.05, ge=0)
    warmup_epochs: float = Field(default=1.0, ge=0)
    val_fraction: float = Field(default=0.2, gt=0, lt=1)
    seed: int = 0
    patience: int | None = Field(default=5, ge=1)  # epochs without val-loss improvement; None: never stop early
    # Weights published: the epoch with the lowest validation loss, or the last epoch (with a
    # full cosine schedule the last is usually best, and the validation split stays unused
    # for model selection, e.g. kept for calibration only).
    keep: Literal["best", "last"] = "best"
    augment: bool = True
    resume: bool = False
    name: str | None = None
    version: str = Field(default="1", min_length=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    workers: int | None = Field(default=None, ge=0)  # data-loading processes; None: 0 on CPU, up to 8 on CUDA
    progress: bool = True

    # Subclass fields that only steer evaluation after training (a resume may change them).
    evaluation_only: ClassVar[frozenset[str]] = frozenset()

    def default_name(self, kind: str) -> str:
        root = self.data.parent if self.data.is_file() else self.data
        return self.name or f"{root.resolve().name or 'dermq'}-{kind}"


@dataclass
class TrainResult:
    bundle_dir: Path
    manifest: BundleManifest
    history: list[dict[str, float]]
    seconds_per_epoch: float
    evaluation: ClassificationEvaluation | SegmentationEvaluation


@dataclass
class FitOutcome:
    model: nn.Module  # best-epoch weights, eval mode, on ``device``
    history: list[dict[str, float]]
    best_epoch: int
    val_loss: float
    val_outputs: Tensor  # best model's outputs on the validation set (CPU, float32)
    val_targets: Tensor
    device: torch.device
    seconds_per_epoch: float = field(init=False)

    def __post_init__(self) -> None:
        seconds = [h["seconds"] for h in self.history]
        self.seconds_per_epoch = sum(seconds) / len(seconds) if seconds else 0.0


def build_model(architecture: str, num_outputs: int, seed: int) -> nn.Module:
    """A freshly initialised network, reproducible from ``seed``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    torch.manual_seed(seed)
    return ARCHITECTURES[architecture](num_outputs)


def file_list_digest(paths: Sequence[Path], root: Path) -> str:
    """Identity of a split that survives moving the data directory."""
    rel = [str(p.relative_to(root)) if p.is_relative_to(root) else p.name for p in paths]
    return hashlib.sha256("\n".join(rel).encode()).hexdigest()[:16]


def build_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int) -> LRScheduler:
    """Per-step schedule: linear warm-up from 1 % of the base rate, then cosine to 1 %."""
    base = optimizer.param_groups[0]["lr"]
    warmup_steps = min(warmup_steps, total_steps - 1)
    cosine = CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup_steps), eta_min=0.01 * base)
    if warmup_steps <= 0:
        return cosine
    warmup = LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup_steps)
    return SequentialLR(optimizer, [warmup, cosine], milestones=[warmup_steps])


def _optimizer(model: nn.Module, lr: float, weight_decay: float) -> AdamW:
    # No decay on norm scales and biases: shrinking them only fights the normalisation.
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return AdamW(
        [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write(path, buffer.getvalue())


def _load_checkpoint(path: Path, fingerprint: dict[str, Any], ignore: frozenset[str] = frozenset()) -> dict[str, Any]:
    try:
        # weights_only: a checkpoint is data, never code to unpickle.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for bad files
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from None
    if state.get("format") != _CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {state.get('format')}, expected {_CHECKPOINT_FORMAT}")
    old = {k: v for k, v in state["fingerprint"].items() if k not in ignore}
    changed = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
    if changed:
        diffs = "; ".join(f"{k}: {old.get(k)!r} -> {fingerprint.get(k)!r}" for k in changed)
        raise CheckpointError(
            f"checkpoint {path} belongs to a different run ({diffs}); "
            "resume with the same data and settings, or start over without --resume"
        )
    return state


def _loader(dataset: Dataset, config: TrainConfig, device: torch.device, train: bool, generator: torch.Generator | None) -> DataLoader:
    workers = config.workers if config.workers is not None else (min(8, os.cpu_count() or 1) if device.type == "cuda" else 0)
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=train,
        generator=generator,
        # A final batch of one makes BatchNorm statistics meaningless.
        drop_last=train and len(dataset) > config.batch_size,  # type: ignore[arg-type]
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


def _to_device(x: Tensor, device: torch.device) -> Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def _autocast(device: torch.device) -> torch.autocast:
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda")


@torch.no_grad()
def _evaluate(
    model: nn.Module, loader: DataLoader, loss_fn: Callable[[Tensor, Tensor], Tensor], device: torch.device
) -> tuple[float, Tensor, Tensor]:
    """Mean loss, outputs and targets over ``loader`` in eval mode."""
    model.eval()
    outputs, targets, total = [], [], 0.0
    for x, y in loader:
        x, y = _to_device(x, device), y.to(device, non_blocking=True)
        with _autocast(device):
            out = model(x)
        out = out.float()
        total += float(loss_fn(out, y)) * len(x)
        outputs.append(out.cpu())
        targets.append(y.cpu())
    return total / sum(len(t) for t in targets), torch.cat(outputs), torch.cat(targets)


def fit(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    loss_fn: Callable[[Tensor, Tensor], Tensor],
    config: TrainConfig,
    *,
    fingerprint: dict[str, Any],
    description: str,
    checkpoint: str = CHECKPOINT_FILE,
) -> FitOutcome:
    """Train ``model`` with early stopping on validation loss; resumable via checkpoints
    (``OUT/.checkpoint/<checkpoint>``: a recipe with several stages names one per stage)."""
    device = resolve_device(config.device)
    # channels-last: the layout oneDNN (CPU) and cuDNN (tensor cores) run convolutions in
    # fastest; ~1.5x faster training of the depthwise-heavy EfficientNets on CPU.
    model.to(device, memory_format=torch.channels_last)
    fingerprint = config.model_dump(mode="json", exclude=_NOT_FINGERPRINTED | config.evaluation_only) | fingerprint
    generator = torch.Generator()
    train_loader = _loader(train_set, config, device, True, generator)
    val_loader = _loader(val_set, config, device, False, None)
    steps = len(train_loader)
    optimizer = _optimizer(model, config.lr, config.weight_decay)
    scheduler = build_scheduler(optimizer, config.epochs * steps, round(config.warmup_epochs * steps))
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")

    ckpt_path = config.out / CHECKPOINT_DIR / checkpoint
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, bad_epochs, start, stopped = math.inf, 0, None, 0, 0, False
    if config.resume and ckpt_path.is_file():
        state = _load_checkpoint(ckpt_path, fingerprint, config.evaluation_only)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        history, start, stopped = state["history"], state["epoch"], state["stopped"]
        best_loss, best_epoch, best_state, bad_epochs = state["best_loss"], state["best_epoch"], state["best_state"], state["bad_epochs"]
        log.info("resuming %s from %s after epoch %d", description, ckpt_path, start)
    elif config.resume:
        log.info("no checkpoint at %s; starting %s from scratch", ckpt_path, description)

    for epoch in range(start, config.epochs):
        if stopped:
            break
        began = time.perf_counter()
        train_set.epoch = epoch  # type: ignore[attr-defined]
        generator.manual_seed(config.seed * 1_000_003 + epoch)
        model.train()
        running, seen = 0.0, 0
        bar = tqdm(train_loader, desc=f"{description} {epoch + 1}/{config.epochs}", leave=False, disable=not config.progress)
        for x, y in bar:
            x, y = _to_device(x, device), y.to(device, non_blocking=True)
            with _autocast(device):
                out = model(x)
            loss = loss_fn(out.float(), y)
            if not torch.isfinite(loss):
                raise ValueError(f"training diverged (loss {float(loss)}) in epoch {epoch + 1}; lower --lr")
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            running += float(loss.detach()) * len(x)
            seen += len(x)
            bar.set_postfix(loss=f"{running / seen:.4f}")
        val_loss, _, _ = _evaluate(model, val_loader, loss_fn, device)
        record = {
            "epoch": epoch + 1,
            "train_loss": running / max(seen, 1),
            "val_loss": val_loss,
            "lr": optimizer.param_groups[0]["lr"],
            "seconds": time.perf_counter() - began,
        }
        history.append(record)
        if val_loss < best_loss:
            best_loss, best_epoch, bad_epochs = val_loss, epoch + 1, 0
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        else:
            bad_epochs += 1
        stopped = config.patience is not None and bad_epochs >= config.patience
        message = f"{description} epoch {epoch + 1}/{config.epochs}: train {record['train_loss']:.4f}, val {val_loss:.4f}, {record['seconds']:.1f}s"
        if config.progress:
            tqdm.write(message + (" (early stop)" if stopped else ""))
        log.info(message)
        _save_checkpoint(
            ckpt_path,
            {
                "format": _CHECKPOINT_FORMAT,
                "fingerprint": fingerprint,
                "epoch": epoch + 1,
                "stopped": stopped,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "best_loss": best_loss,
                "best_epoch": best_epoch,
                "best_state": best_state,
                "bad_epochs": bad_epochs,
                "history": history,
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                },
            },
        )

    if best_state is None:
        raise ValueError("no epoch produced a finite validation loss")
    if config.keep == "best":
        model.load_state_dict(best_state)
    else:
        best_epoch = len(history)
    val_loss, outputs, targets = _evaluate(model, val_loader, loss_fn, device)
    return FitOutcome(model.eval(), history, best_epoch, val_loss, outputs, targets, device)


def publish(
    config: TrainConfig,
    outcome: FitOutcome,
    evaluation: ClassificationEvaluation | SegmentationEvaluation,
    *,
    name: str,
    architecture: str,
    task: Literal["classification", "segmentation"],
    classes: Sequence[str],
    training_data: dict[str, Any],
    temperature: float = 1.0,
    metrics: dict[str, ClassMetrics] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    extra_evaluations: dict[str, ClassificationEvaluation | SegmentationEvaluation] | None = None,
    half: bool = False,
) -> TrainResult:
    """Write the bundle (best weights, metrics, data summary) and its model card.

    ``evaluation`` is the one the bundle's metrics come from; ``extra_evaluations``
    (e.g. an external test set) are recorded beside it in the manifest and the card.
    ``half`` stores floating-point tensors as fp16 (half the size; evaluate the model after
    :func:`round_to_half` so the figures are those of the stored weights).
    """
    evaluation.extra |= {
        "val_loss": round(outcome.val_loss, 5),
        "epochs": float(len(outcome.history)),
        "best_epoch": float(outcome.best_epoch),
        "seconds_per_epoch": round(outcome.seconds_per_epoch, 2),
    }
    state = outcome.model.state_dict()
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    manifest = save_bundle(
        config.out,
        state,
        name=name,
        version=config.version,
        architecture=architecture,
        classes=classes,
        task=task,
        input_size=config.input_size,
        mean=mean,
        std=std,
        temperature=temperature,
        metrics=metrics,
        summary_metrics=evaluation.summary_metrics(),
        training_data=training_data,
        evaluation={"validation": evaluation.to_record()} | {k: v.to_record() for k, v in (extra_evaluations or {}).items()},
        trained=True,
    )
    write_model_card(config.out, manifest, evaluation, outcome.history)
    return TrainResult(config.out, manifest, outcome.history, outcome.seconds_per_epoch, evaluation)


@torch.no_grad()
def round_to_half(model: nn.Module) -> nn.Module:
    """Round every floating-point parameter and buffer to fp16 precision (kept in fp32)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            tensor.copy_(tensor.half().float())
    return model


def data_summary(config: TrainConfig, source: dict[str, Any], n_train: int, n_val: int, split_method: str) -> dict[str, Any]:
    """The manifest's ``training_data`` fields common to every task."""
    return {
        "source": source,
        "images": n_train + n_val,
        "seed": config.seed,
        "split": {"method": split_method, "val_fraction": config.val_fraction, "train": n_train, "val": n_val},
        "augmentation": asdict(AugmentConfig()) if config.augment else None,
    }

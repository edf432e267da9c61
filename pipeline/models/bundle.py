"""Model bundles: ``manifest.json`` + ``weights.safetensors``, verified at load.

A bundle is the unit a worker loads at start.  The manifest (snake_case JSON keys: it
is a file format, not part of the HTTP API) says how to build the network, how to
preprocess input, which classes the outputs mean, how to calibrate them
(``temperature``) and how good they were on validation data.  ``weights_sha256`` pins
the exact weights file, so a manifest can never silently describe other weights.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import Tensor, nn

from core.fileio import atomic_write
from pipeline.models.efficientnet import efficientnet
from pipeline.models.efficientnet_lite import efficientnet_lite0
from pipeline.models.lite_unet import unet_lite0
from pipeline.models.unet import unet

__all__ = [
    "ARCHITECTURES",
    "MANIFEST_FILE",
    "WEIGHTS_FILE",
    "FORMAT_VERSION",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "REFERENCE_NAME",
    "SHIPPED_BUNDLES",
    "SHIPPED_DIR",
    "BundleError",
    "BundleManifest",
    "ClassMetrics",
    "HEAD_PREFIX",
    "HeadSpec",
    "ModelBundle",
    "load_bundle",
    "parse_bundle",
    "reference_bundle",
    "register_architecture",
    "save_bundle",
    "verify_bundle",
]

MANIFEST_FILE = "manifest.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
REFERENCE_NAME = "dermq-reference-untrained"
# The trained bundles served when nothing else is configured (rebuilt by
# ``dermq train dermoscopy-classifier`` / ``dermoscopy-segmenter``; see docs/models.md).
SHIPPED_DIR = Path(__file__).resolve().parent.parent / "bundles"
SHIPPED_BUNDLES: dict[str, Path] = {
    "classification": SHIPPED_DIR / "dermoscopy-classifier",
    "segmentation": SHIPPED_DIR / "dermoscopy-segmenter",
}
# Fixed so the whole reference bundle (manifest included) is reproducible.
_REFERENCE_CREATED = "1970-01-01T00:00:00+00:00"


class BundleError(Exception):
    """A bundle is missing, malformed, tampered with, or does not fit its architecture."""


# name -> builder(num_classes) -> module.  Builders must be deterministic given the
# global torch RNG state, so reference weights are reproducible.
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    f"efficientnet_{v}": (lambda n, v=v: efficientnet(v, num_classes=n))
    for v in ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7")
} | {"efficientnet_lite0": lambda n: efficientnet_lite0(n), "unet": lambda n: unet(n), "unet_lite0": lambda n: unet_lite0(n)}


def register_architecture(name: str, builder: Callable[[int], nn.Module]) -> None:
    """Make ``name`` usable in manifests (e.g. a segmentation network)."""
    ARCHITECTURES[name] = builder
    _expected_shapes.cache_clear()


class ClassMetrics(BaseModel):
    """Validation metrics of one class; sensitivity/specificity in percent."""

    model_config = ConfigDict(extra="forbid")

    sensitivity: float | None = Field(default=None, ge=0, le=100)
    specificity: float | None = Field(default=None, ge=0, le=100)
    support: int | None = Field(default=None, ge=0)
    auroc: float | None = Field(default=None, ge=0, le=1)


# Auxiliary heads live in the same weights file under ``heads.<name>.weight`` / ``.bias``.
HEAD_PREFIX = "heads."


class HeadSpec(BaseModel):
    """A linear head on pooled backbone features, beside the main classifier.

    It reads feature maps the classifier's forward pass computes anyway (e.g. the image
    gate: skin photograph or not, clinical or dermoscopic), so it costs a few poolings and
    one small matrix product. Its input is, for each stage in ``taps`` (indices into the
    backbone's ``features``; empty: the last feature map), the per-channel ``pooling``
    statistics, concatenated in that order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    classes: list[str] = Field(min_length=2)
    taps: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list)
    pooling: list[Literal["mean", "std"]] = Field(default_factory=lambda: ["mean"], min_length=1)
    temperature: float = Field(default=1.0, gt=0)
    summary_metrics: dict[str, float] = Field(default_factory=dict)
    training_data: dict[str, Any] = Field(default_factory=dict)
    evaluation: dict[str, Any] = Field(default_factory=dict)
    created: str | None = None


class BundleManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    format_version: int = FORMAT_VERSION
    name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    task: Literal["classification", "segmentation"]
    architecture: str
    input_size: int = Field(default=224, ge=32, le=2048)
    mean: list[float] = Field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = Field(default_factory=lambda: list(IMAGENET_STD))
    classes: list[str] = Field(min_length=1)
    temperature: float = Field(default=1.0, gt=0)
    metrics: dict[str, ClassMetrics] = Field(default_factory=dict)
    summary_metrics: dict[str, float] = Field(default_factory=dict)
    training_data: dict[str, Any] = Field(default_factory=dict)
    # Full evaluation records per data split (confusion matrix, per-class figures...).
    evaluation: dict[str, Any] = Field(default_factory=dict)
    heads: dict[str, HeadSpec] = Field(default_factory=dict)
    weights_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    trained: bool
    created: str

    @field_validator("format_version")
    @classmethod
    def _known_format(cls, v: int) -> int:
        if v != FORMAT_VERSION:
            raise ValueError(f"unsupported bundle format_version {v}; this code reads {FORMAT_VERSION}")
        return v

    @field_validator("mean", "std")
    @classmethod
    def _three_channels(cls, v: list[float]) -> list[float]:
        if len(v) != 3 or not all(math.isfinite(x) for x in v):
            raise ValueError("must be 3 finite numbers (R, G, B)")
        return v

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: list[float]) -> list[float]:
        if any(x <= 0 for x in v):
            raise ValueError("std must be positive")
        return v

    @field_validator("temperature")
    @classmethod
    def _finite_temperature(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("temperature must be finite")
        return v

    @field_validator("created")
    @classmethod
    def _iso_time(cls, v: str) -> str:
        datetime.fromisoformat(v)  # raises ValueError with a useful message
        return v

    @model_validator(mode="after")
    def _consistent_classes(self) -> BundleManifest:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("classes must be unique")
        unknown = sorted(set(self.metrics) - set(self.classes))
        if unknown:
            raise ValueError(f"metrics for classes not in the class list: {unknown}")
        return self

    def sensitivity_specificity(self, code: str) -> tuple[float | None, float | None]:
        """Validation sensitivity/specificity (percent) of ``code``; ``None`` if unknown."""
        m = self.metrics.get(code)
        return (m.sensitivity, m.specificity) if m else (None, None)


def _describe(e: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, err['loc'])) or 'manifest'}: {err['msg']}" for err in e.errors()
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _build(architecture: str, num_classes: int) -> nn.Module:
    """Instantiate an architecture without disturbing the caller's global RNG stream."""
    try:
        builder = ARCHITECTURES[architecture]
    except KeyError:
        raise BundleError(
            f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}"
        ) from None
    with torch.random.fork_rng(devices=[]):
        return builder(num_classes)


@lru_cache(maxsize=16)
def _expected_shapes(architecture: str, num_classes: int) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in _build(architecture, num_classes).state_dict().items()}


def _optional_key(key: str) -> bool:
    # BatchNorm's step counter is unused at inference and absent from some checkpoints.
    return key.endswith("num_batches_tracked")


def _head_problems(heads: Mapping[str, HeadSpec], state_dict: Mapping[str, Tensor]) -> list[str]:
    """Each declared head needs a (classes x inputs) weight and a (classes,) bias; no undeclared head tensors.

    The input width depends on the tapped stages, so it is checked when the head is wired
    to the network (``pipeline.classify.Classifier``).
    """
    found: list[str] = []
    expected = {f"{HEAD_PREFIX}{name}.{part}" for name in heads for part in ("weight", "bias")}
    extra = sorted(k for k in state_dict if k.startswith(HEAD_PREFIX) and k not in expected)
    if extra:
        found.append(f"{len(extra)} unexpected tensors, e.g. {extra[:3]}")
    for name, head in heads.items():
        weight, bias = state_dict.get(f"{HEAD_PREFIX}{name}.weight"), state_dict.get(f"{HEAD_PREFIX}{name}.bias")
        if weight is None or bias is None:
            found.append(f"head {name} has no {HEAD_PREFIX}{name}.weight/.bias tensors")
        elif weight.ndim != 2 or weight.shape[0] != len(head.classes) or tuple(bias.shape) != (len(head.classes),):
            found.append(f"{HEAD_PREFIX}{name}.weight: shape {tuple(weight.shape)} / bias {tuple(bias.shape)}, "
                         f"expected {len(head.classes)} rows for classes {head.classes}")
    return found


def _state_dict_problems(
    architecture: str, classes: int, state_dict: Mapping[str, Tensor], heads: Mapping[str, HeadSpec] | None = None
) -> list[str]:
    """How ``state_dict`` fails to fit ``architecture`` with ``classes`` outputs (empty: fits)."""
    try:
        expected = _expected_shapes(architecture, classes)
    except BundleError as e:
        return [str(e)]
    found: list[str] = _head_problems(heads or {}, state_dict)
    state_dict = {k: v for k, v in state_dict.items() if not k.startswith(HEAD_PREFIX)}
    missing = sorted(k for k in set(expected) - set(state_dict) if not _optional_key(k))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing:
        found.append(f"{len(missing)} tensors missing, e.g. {missing[:3]}")
    if unexpected:
        found.append(f"{len(unexpected)} unexpected tensors, e.g. {unexpected[:3]}")
    for key in sorted(set(expected) & set(state_dict)):
        got = tuple(state_dict[key].shape)
        if got != expected[key]:
            found.append(f"{key}: shape {got} in weights, expected {expected[key]}")
    prefix = f"weights do not fit {architecture} with {classes} classes: "
    return [prefix + p for p in found]


@dataclass
class ModelBundle:
    manifest: BundleManifest
    state_dict: dict[str, Tensor]

    def build_module(self) -> nn.Module:
        """Construct the architecture and load the weights strictly (CPU, eval mode)."""
        m = self.manifest
        problems = _state_dict_problems(m.architecture, len(m.classes), self.state_dict, m.heads)
        if problems:
            raise BundleError(f"bundle {m.name} {m.version}: " + "; ".join(problems))
        module = _build(m.architecture, len(m.classes))
        backbone = {k: v for k, v in self.state_dict.items() if not k.startswith(HEAD_PREFIX)}
        missing, _ = module.load_state_dict(backbone, strict=False)
        assert all(_optional_key(k) for k in missing)
        return module.eval()

    def head(self, name: str) -> tuple[HeadSpec, Tensor, Tensor] | None:
        """An auxiliary head's spec, weight (classes x features) and bias; None if absent."""
        spec = self.manifest.heads.get(name)
        if spec is None:
            return None
        return spec, self.state_dict[f"{HEAD_PREFIX}{name}.weight"], self.state_dict[f"{HEAD_PREFIX}{name}.bias"]


def _inspect(manifest_json: bytes | str | None, weights: bytes | None) -> tuple[ModelBundle | None, list[str]]:
    """Decode a bundle, collecting every problem found rather than stopping at the first."""
    problems: list[str] = []
    manifest: BundleManifest | None = None
    state_dict: dict[str, Tensor] | None = None
    if manifest_json is not None:
        try:
            manifest = BundleManifest.model_validate_json(manifest_json)
        except ValidationError as e:
            problems.append(f"invalid {MANIFEST_FILE}: {_describe(e)}")
    if weights is not None:
        if manifest is not None and (digest := _sha256(weights)) != manifest.weights_sha256:
            problems.append(
                f"{WEIGHTS_FILE} sha256 {digest} does not match manifest weights_sha256 "
                f"{manifest.weights_sha256} (corrupt or mismatched weights)"
            )
        else:
            try:
                state_dict = st_load(weights)
            except Exception as e:  # safetensors raises its own error types
                problems.append(f"cannot decode {WEIGHTS_FILE}: {e}")
    if manifest is not None and state_dict is not None:
        problems += _state_dict_problems(manifest.architecture, len(manifest.classes), state_dict, manifest.heads)
    if problems or manifest is None or state_dict is None:
        return None, problems
    return ModelBundle(manifest, state_dict), []


def parse_bundle(manifest_json: bytes | str, weights: bytes) -> ModelBundle:
    """Validate and decode a bundle from raw bytes (local files or an object store)."""
    bundle, problems = _inspect(manifest_json, weights)
    if bundle is None:
        raise BundleError("; ".join(problems))
    return bundle


def _read_files(directory: str | os.PathLike[str]) -> tuple[bytes | None, bytes | None, list[str]]:
    d = Path(directory)
    contents: list[bytes | None] = []
    problems: list[str] = []
    for name in (MANIFEST_FILE, WEIGHTS_FILE):
        try:
            contents.append((d / name).read_bytes())
        except OSError as e:
            contents.append(None)
            problems.append(f"cannot read {d / name}: {e.strerror or e}")
    return contents[0], contents[1], problems


def load_bundle(directory: str | os.PathLike[str]) -> ModelBundle:
    """Load and fully verify the bundle in ``directory``; raises ``BundleError``."""
    manifest_json, weights, problems = _read_files(directory)
    if problems:
        raise BundleError("; ".join(problems))
    assert manifest_json is not None and weights is not None
    return parse_bundle(manifest_json, weights)


def verify_bundle(directory: str | os.PathLike[str]) -> list[str]:
    """Every problem with the bundle in ``directory``; empty when it loads cleanly."""
    manifest_json, weights, problems = _read_files(directory)
    return problems + _inspect(manifest_json, weights)[1]



def _serialize(state_dict: Mapping[str, Tensor]) -> bytes:
    # safetensors needs contiguous CPU tensors that do not share storage.
    return st_save({k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items()})


def save_bundle(
    directory: str | os.PathLike[str],
    state_dict: Mapping[str, Tensor],
    *,
    name: str,
    version: str,
    architecture: str,
    classes: Sequence[str],
    task: Literal["classification", "segmentation"] = "classification",
    input_size: int = 224,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    temperature: float = 1.0,
    metrics: Mapping[str, ClassMetrics | Mapping[str, Any]] | None = None,
    summary_metrics: Mapping[str, float] | None = None,
    training_data: Mapping[str, Any] | None = None,
    evaluation: Mapping[str, Any] | None = None,
    heads: Mapping[str, HeadSpec] | None = None,
    trained: bool = True,
    created: str | None = None,
) -> BundleManifest:
    """Write ``weights.safetensors`` then ``manifest.json`` into ``directory``.

    Each file is written to a temporary name and renamed into place, and the manifest
    goes last: a crash leaves either the previous bundle or one whose sha256 check
    fails — never a manifest that validates against half-written weights.
    """
    problems = _state_dict_problems(architecture, len(classes), state_dict, heads)
    if problems:
        raise BundleError("refusing to save: " + "; ".join(problems))
    weights = _serialize(state_dict)
    try:
        manifest = BundleManifest(
            name=name,
            version=version,
            task=task,
            architecture=architecture,
            input_size=input_size,
            mean=list(mean),
            std=list(std),
            classes=list(classes),
            temperature=temperature,
            metrics={k: ClassMetrics.model_validate(v) for k, v in (metrics or {}).items()},
            summary_metrics=dict(summary_metrics or {}),
            training_data=dict(training_data or {}),
            evaluation=dict(evaluation or {}),
            heads=dict(heads or {}),
            weights_sha256=_sha256(weights),
            trained=trained,
            created=created or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
    except ValidationError as e:
        raise BundleError(f"invalid manifest: {_describe(e)}") from e
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(d / WEIGHTS_FILE, weights)
    atomic_write(d / MANIFEST_FILE, (manifest.model_dump_json(indent=2) + "\n").encode())
    return manifest


def _calibrate_batchnorm(module: nn.Module, input_size: int, generator: torch.Generator) -> None:
    """Give untrained BatchNorm layers usable running statistics.

    With freshly initialised running stats (mean 0, var 1) an untrained EfficientNet's
    activations shrink ~3x per block in eval mode, so logits and CAMs collapse to ~1e-14
    and every image gets the uniform distribution.  One forward pass over seeded noise
    sets each layer's running variance to the power of two nearest its input variance
    (layers are calibrated in order, each seeing already-calibrated inputs).  Rounding
    to powers of two keeps the weights bit-reproducible across CPUs and thread counts
    despite last-bit differences in convolution arithmetic.
    """

    def hook(bn: nn.Module, args: tuple[Tensor, ...]) -> None:
        assert isinstance(bn, nn.BatchNorm2d) and bn.running_var is not None
        var = float(args[0].var())
        bn.running_var.fill_(2.0 ** round(math.log2(max(var, 1e-12))))

    handles = [m.register_forward_pre_hook(hook) for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    try:
        module.eval()
        x = torch.randn(2, 3, input_size, input_size, generator=generator)
        with torch.inference_mode():
            module(x)
    finally:
        for h in handles:
            h.remove()


@lru_cache(maxsize=4)
def _reference_weights(classes: int, architecture: str, input_size: int) -> bytes:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module = _build(architecture, classes)
        # 128 px is enough for the statistics and keeps worker start fast.
        _calibrate_batchnorm(module, min(input_size, 128), torch.Generator().manual_seed(0))
        # torchvision's head init scales with 1/sqrt(classes), which saturates the softmax
        # of a few-class untrained model; unit-variance logits exercise the whole range.
        head = [m for m in module.modules() if isinstance(m, nn.Linear)][-1]
        nn.init.normal_(head.weight, 0.0, head.in_features**-0.5)
    return _serialize(module.state_dict())


REFERENCE_TEMPERATURE = 1000.0


def reference_bundle(
    classes: Sequence[str], *, architecture: str = "efficientnet_b0", input_size: int = 224
) -> ModelBundle:
    """Deterministic *untrained* weights, for running the service without a trained model.

    Bit-identical across calls and independent of the global RNG; its predictions are
    meaningless and ``manifest.trained`` is ``False`` so callers can say so. Random weights
    can still produce large logit gaps on some images, so the temperature is set high enough
    that the ranking never looks confident: an untrained model knows nothing.
    """
    weights = _reference_weights(len(classes), architecture, input_size)
    manifest = BundleManifest(
        name=REFERENCE_NAME,
        version="0",
        task="classification",
        architecture=architecture,
        input_size=input_size,
        classes=list(classes),
        weights_sha256=_sha256(weights),
        temperature=REFERENCE_TEMPERATURE,
        trained=False,
        created=_REFERENCE_CREATED,
        training_data={"description": "none: deterministic untrained reference weights"},
    )
    return ModelBundle(manifest, st_load(weights))

"""Lesion segmentation: a classical CIELAB colour-clustering segmenter and a learned one.

The classical method (the default) works on a copy whose long side is ``WORK_SIDE``
pixels, so its cost does not depend on the camera resolution:

1. Hair is removed: thin dark lines stand out in a morphological black-hat of the
   grey image and are inpainted from their surroundings.
2. The analysis area is the skin region of ``pipeline.skin`` (which already contains
   the lesions inside the skin) plus pale near-neutral pixels (very fair skin under a
   dermoscope's white light), minus the dermoscope's dark vignette.  Stickers, rulers'
   backgrounds and dark frame corners fall outside it.
3. Two-means clustering in CIELAB splits the area into skin and lesion.  Pixels are
   weighted by a Gaussian centred on the frame, because photos are taken with the
   lesion near the centre: without it a small lesion loses to the split of skin along
   an illumination gradient.  The gradient itself is then removed by fitting a
   quadratic surface to each Lab channel over the skin cluster, and the clustering is
   repeated on the flattened image.
4. Each pixel's position along the skin-to-lesion axis (0 at the skin centre, 1 at the
   lesion centre) gives the colour probability, a logistic function of that position.
5. Candidate lesion pixels (probability >= 0.5) are opened and closed; the connected
   component that is large, central and away from the frame is "the lesion".  It grows
   into connected, fainter lesion-coloured pixels close to it (hysteresis), which
   recovers the pale rims that annotators include; holes are filled.
6. The returned probability is the mean of the colour probability and a Gaussian-blurred
   indicator of the chosen lesion, so the binary mask is exactly ``prob >= 0.5``, with
   boundaries that follow colour, and rejected lesion-coloured blobs stay visibly below
   the threshold in the raw map.

When the two cluster centres are barely different colours (plain skin) no lesion is reported.
Measured figures and limits: ``docs/segmentation.md``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Callable, Protocol

import cv2
import numpy as np
import torch

from pipeline.classify import preprocess_image
from pipeline.models.bundle import BundleError, BundleManifest, ModelBundle
from pipeline.models.inference import fold_batchnorm
from pipeline.resize import fitted_shape, resize_probability
from pipeline.skin import fill_holes, skin_region, vignette_mask

__all__ = [
    "CLASSICAL_METHOD",
    "BatchedSegmenter",
    "ClassicalSegmenter",
    "LearnedSegmenter",
    "Segmentation",
    "Segmenter",
    "dice",
    "dice_jaccard_many",
    "evaluate",
    "jaccard",
    "resize_probability",
    "remove_hair",
]

CLASSICAL_METHOD = "classical"
THRESHOLD = 0.5
WORK_SIDE = 256
HAIR_KERNEL = 9  # closing element (px at WORK_SIDE): wider than a hair, narrower than a lesion
HAIR_CONTRAST = 10  # grey levels darker than the closed neighbourhood
HAIR_MIN_SHARE = 0.002  # below this there is no hair worth erasing
PALE_L, PALE_CHROMA = 60.0, 18.0  # bright near-neutral pixels: fair skin the chroma model misses
CENTRE_SIGMA = 0.3  # of the frame's height/width
SLOPE = 0.12  # logistic width along the skin->lesion axis
GROW_LEVEL = 0.2  # hysteresis: fainter pixels (axis position >= 0.2) join the lesion...
GROW_REACH = 0.5  # ...within this share of the lesion's equivalent radius of it
GATE_SIGMA = 2.0  # px at WORK_SIDE: softness of the chosen-lesion indicator
# Cluster centres closer than this (CIE76 Delta E) are one colour: plain skin split by shading
# gives 2.5-6 on lesion-free dermoscopic crops, faint lesions 6-15, typical lesions 15-45.
MIN_DELTA_E = 6.0
BORDER_PENALTY = 3.0
CLUSTER_SAMPLES = 12_000
MIN_AREA_PX = 64


@dataclass
class Segmentation:
    prob: np.ndarray  # HxW float32 in [0, 1], lesion probability
    binary: np.ndarray  # HxW bool == prob >= threshold
    threshold: float
    method: str  # "classical" or the bundle's name@version
    trained: bool  # False for the classical method


class Segmenter(Protocol):
    def segment(self, rgb: np.ndarray) -> Segmentation: ...


def _check_rgb(rgb: np.ndarray) -> None:
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or rgb.size == 0:
        raise ValueError(f"expected a non-empty HxWx3 uint8 RGB image, got {rgb.shape} {rgb.dtype}")


def _result(prob: np.ndarray, method: str, trained: bool) -> Segmentation:
    prob = np.clip(prob, 0.0, 1.0).astype(np.float32)
    return Segmentation(prob, prob >= THRESHOLD, THRESHOLD, method, trained)


def remove_hair(rgb: np.ndarray, kernel: int = HAIR_KERNEL) -> np.ndarray:
    """Erase thin dark lines (hairs, ruler ticks): where a colour closing is much brighter (a black-hat)."""
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    closed = cv2.morphologyEx(rgb, cv2.MORPH_CLOSE, element)  # every channel with thin dark lines erased
    grey, grey_closed = (cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) for a in (rgb, closed))
    hair = cv2.dilate(((grey_closed.astype(np.int16) - grey) > HAIR_CONTRAST).astype(np.uint8), np.ones((3, 3), np.uint8))
    if hair.mean() < HAIR_MIN_SHARE:
        return rgb
    # The closing's own value, not inpainting: cheaper, and at WORK_SIDE a hair is 1-3 px wide.
    return np.where(hair[..., None].astype(bool), closed, rgb)


def _to_lab(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2Lab)
    return cv2.GaussianBlur(lab, (0, 0), 1.0)  # suppress JPEG and skin-texture noise


def _analysis_area(rgb: np.ndarray, lab: np.ndarray, vignette: np.ndarray) -> np.ndarray:
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    pale = (lab[..., 0] > PALE_L) & (chroma < PALE_CHROMA)
    area = (skin_region(rgb, vignette=vignette) | pale) & ~vignette
    return area if area.mean() >= 0.05 else ~vignette  # no skin found: use the whole frame


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [-0.5, 0.5], as broadcastable column/row vectors."""
    h, w = shape
    return (np.arange(h, dtype=np.float32) + 0.5)[:, None] / h - 0.5, (np.arange(w, dtype=np.float32) + 0.5)[None, :] / w - 0.5


def _centre_weights(shape: tuple[int, int]) -> np.ndarray:
    y, x = _grid(shape)
    return np.exp(-(y * y + x * x) / (2 * CENTRE_SIGMA**2))


def _two_means(lab: np.ndarray, area: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(skin centre, lesion centre) of a weighted two-means split of the area's Lab values."""
    step = max(1, int(area.sum()) // CLUSTER_SAMPLES)  # a regular subsample pins two centres
    x, wt = lab[area][::step].astype(np.float64), weights[area][::step].astype(np.float64)
    lightness = x[:, 0]
    skin = np.median(x[lightness >= np.median(lightness)], axis=0)
    lesion = np.median(x[lightness <= np.percentile(lightness, 10)], axis=0)
    for _ in range(10):
        w_lesion = wt * (_axis_position(x, skin, lesion) > 0.5)
        w_skin = wt - w_lesion
        if not w_lesion.any() or not w_skin.any():
            break
        skin, lesion = (w_skin @ x) / w_skin.sum(), (w_lesion @ x) / w_lesion.sum()
    return skin, lesion


def _axis_position(lab: np.ndarray, skin: np.ndarray, lesion: np.ndarray) -> np.ndarray:
    """Projection on the skin->lesion axis: 0 at the skin centre, 1 at the lesion centre."""
    d = lesion - skin
    return ((lab - skin) @ (d / max(float(d @ d), 1e-6))).astype(lab.dtype)


def _quadratic_terms(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    return [np.ones_like(y * x), x, y, x * x, y * y, x * y]


def flatten_illumination(lab: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Subtract a quadratic surface fitted to each Lab channel over ``skin`` (vignetting, uneven light)."""
    rows, cols = np.nonzero(skin)
    if rows.size < 60:
        return lab
    step = max(1, rows.size // CLUSTER_SAMPLES)  # a regular subsample pins six coefficients
    rows, cols = rows[::step], cols[::step]
    y, x = _grid(skin.shape)
    basis = np.stack(_quadratic_terms(y[rows, 0], x[0, cols]), axis=1)
    coef, *_ = np.linalg.lstsq(basis, lab[rows, cols], rcond=None)
    surface = sum(term[..., None] * c.astype(np.float32) for term, c in zip(_quadratic_terms(y, x), coef))
    return (lab - surface + surface[skin].mean(axis=0)).astype(np.float32)


def _separated(skin: np.ndarray, lesion: np.ndarray) -> bool:
    """Whether the clusters are distinct colours rather than uniform skin split by noise and shading."""
    return float(np.linalg.norm(lesion - skin)) >= MIN_DELTA_E


def _frame(shape: tuple[int, int], vignette: np.ndarray) -> np.ndarray:
    frame = cv2.dilate(vignette.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    frame[:2], frame[-2:], frame[:, :2], frame[:, -2:] = True, True, True, True
    return frame


def _pick_component(candidates: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """The component that best fits "the lesion": large, central, not hugging the frame."""
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(candidates.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(candidates.shape, bool)
    h, w = candidates.shape
    area = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    off_centre = np.hypot(centroids[1:, 0] / w - 0.5, centroids[1:, 1] / h - 0.5) / np.sqrt(0.5)
    on_frame = np.bincount(labels[frame], minlength=n)[1:] / (4 * np.sqrt(area))
    score = area / (h * w) * (1 - off_centre) ** 2 / (1 + BORDER_PENALTY * on_frame)
    return labels == 1 + int(np.argmax(score))


def _grow(core: np.ndarray, t: np.ndarray, area: np.ndarray, element: np.ndarray) -> np.ndarray:
    """Add fainter lesion-coloured pixels connected to ``core`` and close to it (hysteresis)."""
    reach = int(GROW_REACH * np.sqrt(core.sum() / np.pi) + 3)
    near = cv2.dilate(core.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
    weak = cv2.morphologyEx(((t >= GROW_LEVEL) & area).astype(np.uint8) & near, cv2.MORPH_OPEN, element)
    _, labels = cv2.connectedComponents(weak | core.astype(np.uint8), connectivity=8)
    keep = np.unique(labels[core])
    return np.isin(labels, keep[keep > 0])


class ClassicalSegmenter:
    """Colour clustering in CIELAB inside the skin area (no trained weights)."""

    method = CLASSICAL_METHOD

    def segment(self, rgb: np.ndarray) -> Segmentation:
        _check_rgb(rgb)
        small = resize_probability(np.ascontiguousarray(rgb), fitted_shape(rgb.shape, WORK_SIDE))
        prob = self.probability(small)
        return _result(resize_probability(prob, rgb.shape[:2]), CLASSICAL_METHOD, False)

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """Lesion probability at the resolution of ``rgb`` (call with a WORK_SIDE-sized image)."""
        vignette = vignette_mask(rgb)
        clean = remove_hair(rgb)
        lab = _to_lab(clean)
        area = _analysis_area(clean, lab, vignette)
        if area.sum() < MIN_AREA_PX:  # e.g. an all-black frame: nothing to cluster
            return np.zeros(area.shape, np.float32)
        weights = _centre_weights(area.shape)
        skin, lesion = _two_means(lab, area, weights)
        lab = flatten_illumination(lab, area & (_axis_position(lab, skin, lesion) < 0.5))
        skin, lesion = _two_means(lab, area, weights)
        t = _axis_position(lab, skin, lesion)
        colour = 1.0 / (1.0 + np.exp(-(t - 0.5) / SLOPE))
        colour = np.where(area, colour, np.minimum(colour, 0.3))  # outside the skin: never the lesion alone
        colour = np.minimum(colour, 0.999)  # so only the chosen lesion can reach the threshold
        chosen = self._lesion(t, area, vignette) if _separated(skin, lesion) else np.zeros_like(area)
        gate = cv2.GaussianBlur(chosen.astype(np.float32), (0, 0), GATE_SIGMA)
        return (0.5 * (colour + gate)).astype(np.float32)

    @staticmethod
    def _lesion(t: np.ndarray, area: np.ndarray, vignette: np.ndarray) -> np.ndarray:
        side = max(3, round(max(t.shape) / 64) | 1)
        element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side))
        candidates = ((t >= 0.5) & area).astype(np.uint8)
        candidates = cv2.morphologyEx(cv2.morphologyEx(candidates, cv2.MORPH_OPEN, element), cv2.MORPH_CLOSE, element)
        core = _pick_component(candidates.astype(bool), _frame(area.shape, vignette))
        if not core.any():
            return core
        return fill_holes(_grow(core, t, area, element))


def _segmentation_manifest(bundle: ModelBundle) -> BundleManifest:
    m = bundle.manifest
    if m.task != "segmentation":
        raise BundleError(f"bundle {m.name} {m.version} is a {m.task} model, not a segmentation model")
    if len(m.classes) != 1:
        raise BundleError(f"bundle {m.name} {m.version} has {len(m.classes)} classes; a lesion segmenter has one")
    return m


class LearnedSegmenter:
    """A ``segmentation`` bundle's network (e.g. the U-Net): sigmoid of its lesion logit."""

    def __init__(self, bundle: ModelBundle, module: torch.nn.Module, device: str | torch.device = "cpu") -> None:
        m = _segmentation_manifest(bundle)
        self.manifest = m
        self.method = f"{m.name}@{m.version}"
        # The gate's name for the image kind the network was trained on ("Dermoscopic"), if stated.
        trained_on = m.training_data.get("modality")
        self.modality: str | None = trained_on.capitalize() if isinstance(trained_on, str) else None
        self.device = torch.device(device)
        self.module = fold_batchnorm(module.eval()).to(self.device)

    @classmethod
    def from_bundle(cls, bundle: ModelBundle, device: str | torch.device = "cpu") -> LearnedSegmenter:
        _segmentation_manifest(bundle)  # refuse before building a network for nothing
        return cls(bundle, bundle.build_module(), device)

    # The three steps of `segment`, apart so that the network call can be batched across jobs
    # (`BatchedSegmenter`): CPU work per image around one model call per batch.
    def preprocess(self, rgb: np.ndarray) -> torch.Tensor:
        _check_rgb(rgb)
        m = self.manifest
        return preprocess_image(rgb, m.input_size, m.mean, m.std)

    @torch.inference_mode()
    def predict(self, batch: torch.Tensor) -> list[np.ndarray]:
        """Lesion probability maps at the input size for an N x 3 x S x S batch (from `preprocess`)."""
        return list(torch.sigmoid(self.module(batch.to(self.device))[:, 0].float()).cpu().numpy())

    def finish(self, prob: np.ndarray, shape: tuple[int, ...]) -> Segmentation:
        """A probability map from `predict`, as the segmentation of an image of this shape."""
        return _result(resize_probability(prob, shape[:2]), self.method, self.manifest.trained)

    def segment(self, rgb: np.ndarray) -> Segmentation:
        return self.finish(self.predict(self.preprocess(rgb)[None])[0], rgb.shape)


class BatchedSegmenter:
    """A `LearnedSegmenter` whose network calls go through ``predict``: one image's tensor in, its
    probability map out, e.g. a dynamic batcher's that concurrent jobs share."""

    def __init__(self, segmenter: LearnedSegmenter, predict: Callable[[torch.Tensor], np.ndarray]) -> None:
        self.segmenter = segmenter
        self._predict = predict
        self.method, self.modality = segmenter.method, segmenter.modality

    def segment(self, rgb: np.ndarray) -> Segmentation:
        return self.segmenter.finish(self._predict(self.segmenter.preprocess(rgb)), rgb.shape)


def dice_jaccard_many(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-mask Dice 2|A∩B| / (|A| + |B|) and Jaccard |A∩B| / |A∪B| of boolean masks (N x ...);
    both 1.0 where the two masks are empty."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    if pred.shape != truth.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {truth.shape}")
    pred, truth = pred.reshape(len(pred), -1), truth.reshape(len(truth), -1)
    inter = np.count_nonzero(pred & truth, axis=1).astype(np.float64)
    total = (np.count_nonzero(pred, axis=1) + np.count_nonzero(truth, axis=1)).astype(np.float64)
    empty = total == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(empty, 1.0, 2 * inter / total), np.where(empty, 1.0, inter / (total - inter))


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks; 1.0 when both are empty."""
    return float(dice_jaccard_many(np.asarray(a)[None], np.asarray(b)[None])[1][0])


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """2|A∩B| / (|A| + |B|); 1.0 when both are empty."""
    return float(dice_jaccard_many(np.asarray(a)[None], np.asarray(b)[None])[0][0])


def evaluate(segmenter: Segmenter, pairs: Iterable[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """Mean/median/min Jaccard, mean Dice, ms per image and count over (rgb, true mask) pairs."""
    jac: list[float] = []
    dic: list[float] = []
    elapsed = 0.0
    for rgb, truth in pairs:
        start = time.perf_counter()
        predicted = segmenter.segment(rgb).binary
        elapsed += time.perf_counter() - start
        jac.append(jaccard(predicted, truth))
        dic.append(dice(predicted, truth))
    if not jac:
        raise ValueError("no images to evaluate")
    return {
        "jaccard_mean": float(np.mean(jac)),
        "jaccard_median": float(np.median(jac)),
        "jaccard_min": float(np.min(jac)),
        "dice_mean": float(np.mean(dic)),
        "ms_per_image": 1000.0 * elapsed / len(jac),
        "n": float(len(jac)),
    }

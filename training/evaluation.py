"""Validation metrics and temperature calibration for classifier and segmenter bundles.

Definitions (also in docs/training.md):

* Operating point: the arg-max class.  Sensitivity of class c = recall of c;
  specificity of c = fraction of non-c images not predicted as c.
* AUROC: one-vs-rest per class from the calibrated probabilities (temperature scaling
  does not change rankings, so it is the same uncalibrated); macro = unweighted mean
  over classes present in the validation set.
* ECE: top-1 confidence in 15 equal-width bins, sum over bins of
  ``|accuracy - mean confidence| * bin share`` (Guo et al., 2017).
* Temperature: the T > 0 minimising the validation negative log-likelihood of
  ``softmax(logits / T)``.  NLL is convex in 1/T, so a bounded 1-D search finds it.
* Segmentation: Dice and Jaccard of the mask thresholded at 0.5, averaged per image
  (an image where both masks are empty scores 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.metrics import confusion_matrix, roc_auc_score

from pipeline.models.bundle import ClassMetrics
from pipeline.segmentation import dice_jaccard_many

__all__ = [
    "ClassificationEvaluation",
    "ReliabilityBins",
    "SegmentationEvaluation",
    "dice_jaccard",
    "evaluate_classifier",
    "evaluate_segmenter",
    "expected_calibration_error",
    "fit_temperature",
    "negative_log_likelihood",
    "one_vs_rest_auroc",
    "reliability_bins",
    "sensitivity_specificity",
    "softmax",
    "top_k_accuracy",
]

ECE_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return np.exp(log_softmax(np.asarray(logits, np.float64) / temperature, axis=1))


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    logp = log_softmax(np.asarray(logits, np.float64) / temperature, axis=1)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising validation NLL, searched on log T within ``TEMPERATURE_BOUNDS``."""
    lo, hi = (math.log(b) for b in TEMPERATURE_BOUNDS)
    res = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, math.exp(log_t)),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-4},
    )
    t = math.exp(float(res.x))
    # Never ship a temperature that does worse than none (possible only at the bounds).
    return t if negative_log_likelihood(logits, labels, t) <= negative_log_likelihood(logits, labels) else 1.0


@dataclass(frozen=True)
class ReliabilityBins:
    edges: np.ndarray  # (n_bins + 1,)
    confidence: np.ndarray  # mean top-1 confidence per bin (NaN when empty)
    accuracy: np.ndarray  # top-1 accuracy per bin (NaN when empty)
    count: np.ndarray  # images per bin


def reliability_bins(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> ReliabilityBins:
    conf = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    # Bins are (lo, hi]; confidence is always > 0, so ceil(.) - 1 is a valid index.
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, conf, n_bins) / count
        acc = np.bincount(idx, correct, n_bins) / count
    return ReliabilityBins(np.linspace(0, 1, n_bins + 1), mean_conf, acc, count)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    b = reliability_bins(probs, labels, n_bins)
    used = b.count > 0
    return float(np.sum(np.abs(b.accuracy[used] - b.confidence[used]) * b.count[used]) / b.count.sum())


def binary_ece(p_positive: np.ndarray, positive: np.ndarray) -> float:
    """ECE of a yes/no probability, binned on the confidence of the decision made."""
    probs = np.stack([1 - p_positive, p_positive], axis=1)
    return expected_calibration_error(probs, positive.astype(np.int64))


def top_k_accuracy(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of images whose true class is among the k highest (ties broken as arg-max does)."""
    top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return float(np.any(top == np.asarray(labels)[:, None], axis=1).mean())


def sensitivity_specificity(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class fractions from a (true x predicted) confusion matrix; NaN where undefined."""
    cm = np.asarray(confusion, np.float64)
    tp = np.diag(cm)
    positives = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    tn = cm.sum() - positives - predicted + tp
    negatives = cm.sum() - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / positives, tn / negatives


def one_vs_rest_auroc(probs: np.ndarray, labels: np.ndarray) -> list[float | None]:
    """AUROC of each class against the rest; ``None`` when the class or its complement is absent."""
    out: list[float | None] = []
    for c in range(probs.shape[1]):
        positive = labels == c
        out.append(float(roc_auc_score(positive, probs[:, c])) if 0 < positive.sum() < len(labels) else None)
    return out


def _percent(x: float) -> float | None:
    return None if math.isnan(x) else round(100.0 * x, 2)


@dataclass
class ClassificationEvaluation:
    classes: list[str]
    labels: np.ndarray  # (N,) true class indices
    logits: np.ndarray  # (N, C) raw logits
    temperature: float
    probs: np.ndarray  # (N, C) calibrated probabilities
    confusion: np.ndarray  # (C, C), rows true, columns predicted
    per_class: dict[str, ClassMetrics]
    top_k: dict[int, float]
    macro_auroc: float | None
    ece: float
    ece_uncalibrated: float
    nll: float
    nll_uncalibrated: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def probs_uncalibrated(self) -> np.ndarray:
        return softmax(self.logits)

    def summary_metrics(self) -> dict[str, float]:
        summary = {f"top{k}": round(v, 4) for k, v in self.top_k.items()}
        if self.macro_auroc is not None:
            summary["macro_auroc"] = round(self.macro_auroc, 4)
        summary |= {
            "ece": round(self.ece, 4),
            "ece_uncalibrated": round(self.ece_uncalibrated, 4),
            "nll": round(self.nll, 4),
            "nll_uncalibrated": round(self.nll_uncalibrated, 4),
        }
        return summary | self.extra

    def to_record(self) -> dict[str, Any]:
        """JSON-ready figures for the manifest: headline metrics, per-class figures, confusion."""
        return {
            "images": int(len(self.labels)),
            "temperature": round(self.temperature, 4),
            "summary": self.summary_metrics(),
            "per_class": {c: m.model_dump() for c, m in self.per_class.items()},
            "confusion": {"rows": "true class", "columns": "predicted class", "classes": self.classes,
                          "counts": self.confusion.astype(int).tolist()},
        }


def evaluate_classifier(
    logits: np.ndarray, labels: np.ndarray, classes: Sequence[str], *, temperature: float | None = None
) -> ClassificationEvaluation:
    """Every reported metric of these logits.  The temperature is fitted on them unless
    given (a held-out test set is scored with the temperature fitted elsewhere)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)
    n_classes = len(classes)
    if temperature is None:
        temperature = fit_temperature(logits, labels)
    probs = softmax(logits, temperature)
    cm = confusion_matrix(labels, probs.argmax(axis=1), labels=np.arange(n_classes))
    sens, spec = sensitivity_specificity(cm)
    aurocs = one_vs_rest_auroc(probs, labels)
    support = cm.sum(axis=1)
    per_class = {
        code: ClassMetrics(
            sensitivity=_percent(sens[i]),
            specificity=_percent(spec[i]),
            support=int(support[i]),
            auroc=None if aurocs[i] is None else round(aurocs[i], 4),
        )
        for i, code in enumerate(classes)
    }
    defined = [a for a in aurocs if a is not None]
    return ClassificationEvaluation(
        classes=list(classes),
        labels=labels,
        logits=logits,
        temperature=temperature,
        probs=probs,
        confusion=cm,
        per_class=per_class,
        top_k={k: top_k_accuracy(probs, labels, k) for k in (1, 3, 5)},
        macro_auroc=float(np.mean(defined)) if defined else None,
        ece=expected_calibration_error(probs, labels),
        ece_uncalibrated=expected_calibration_error(softmax(logits), labels),
        nll=negative_log_likelihood(logits, labels, temperature),
        nll_uncalibrated=negative_log_likelihood(logits, labels),
    )


def dice_jaccard(probs: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Per-image Dice and Jaccard of ``probs > threshold`` against binary ``masks`` (N x ...)."""
    return dice_jaccard_many(np.asarray(probs) > threshold, np.asarray(masks) > 0.5)


@dataclass
class SegmentationEvaluation:
    dice: float
    jaccard: float
    per_image_dice: np.ndarray
    per_image_jaccard: np.ndarray
    extra: dict[str, float] = field(default_factory=dict)

    def summary_metrics(self) -> dict[str, float]:
        return {"dice": round(self.dice, 4), "jaccard": round(self.jaccard, 4)} | self.extra

    def to_record(self) -> dict[str, Any]:
        j = self.per_image_jaccard
        return {
            "images": int(len(j)),
            "summary": self.summary_metrics(),
            "jaccard_mean": round(float(j.mean()), 4),
            "jaccard_median": round(float(np.median(j)), 4),
            "jaccard_thresholded_0_65": round(float(np.where(j >= 0.65, j, 0.0).mean()), 4),
            "share_below_0_5": round(float((j < 0.5).mean()), 4),
            "dice_mean": round(float(self.per_image_dice.mean()), 4),
        }


def evaluate_segmenter(probs: np.ndarray, masks: np.ndarray) -> SegmentationEvaluation:
    dice, jaccard = dice_jaccard(probs, masks)
    return SegmentationEvaluation(float(dice.mean()), float(jaccard.mean()), dice, jaccard)

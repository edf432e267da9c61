"""``MODEL_CARD.md`` (+ ``reliability.png`` and ``roc.png`` for classifiers) beside a bundle.

The card states what was measured and on how little: every proportion carries a 95 %
Wilson interval, because on a validation set of tens of images a "90 % sensitivity"
is compatible with much worse.  Bundle loading reads only ``manifest.json`` and
``weights.safetensors``, so these extra files never affect serving.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy.stats import binomtest
from sklearn.metrics import roc_curve

from core.fileio import atomic_write
from pipeline.catalogue import load_catalogue
from pipeline.models.bundle import BundleManifest
from training.evaluation import (
    ClassificationEvaluation,
    SegmentationEvaluation,
    reliability_bins,
)

__all__ = [
    "MODEL_CARD_FILE",
    "RELIABILITY_FILE",
    "ROC_FILE",
    "dermoscopy_classifier_card",
    "dermoscopy_segmenter_card",
    "plot_reliability",
    "plot_roc",
    "write_model_card",
]

MODEL_CARD_FILE = "MODEL_CARD.md"
RELIABILITY_FILE = "reliability.png"
ROC_FILE = "roc.png"


def _display(code: str) -> str:
    catalogue = load_catalogue()
    return catalogue.get(code).text if code in catalogue else code


def _ci(successes: int, trials: int) -> str:
    if trials == 0:
        return "n/a"
    ci = binomtest(successes, trials).proportion_ci(confidence_level=0.95, method="wilson")
    return f"{100 * successes / trials:.1f} % ({100 * ci.low:.0f}–{100 * ci.high:.0f})"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _axes() -> tuple[Figure, Axes]:
    # The object-oriented API on an Agg canvas: no display, no pyplot global state.
    fig = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_reliability(evaluation: ClassificationEvaluation, path: Path) -> None:
    fig, ax = _axes()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for probs, label, marker in (
        (evaluation.probs_uncalibrated, f"uncalibrated (ECE {evaluation.ece_uncalibrated:.3f})", "o"),
        (evaluation.probs, f"T = {evaluation.temperature:.2f} (ECE {evaluation.ece:.3f})", "s"),
    ):
        b = reliability_bins(probs, evaluation.labels)
        used = b.count > 0
        ax.plot(b.confidence[used], b.accuracy[used], marker=marker, label=label)
    ax.set(xlabel="top-1 confidence", ylabel="top-1 accuracy", xlim=(0, 1), ylim=(0, 1), title="Reliability (validation)")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def plot_roc(evaluation: ClassificationEvaluation, path: Path) -> None:
    fig, ax = _axes()
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    for i, code in enumerate(evaluation.classes):
        auroc = evaluation.per_class[code].auroc
        if auroc is None:
            continue
        fpr, tpr, _ = roc_curve(evaluation.labels == i, evaluation.probs[:, i])
        ax.plot(fpr, tpr, label=f"{code} {_display(code)} (AUROC {auroc:.3f})")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1.01), title="One-vs-rest ROC (validation)")
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def _header(manifest: BundleManifest, kind: str) -> list[str]:
    data = manifest.training_data
    source, split = data.get("source", {}), data.get("split", {})
    return [
        f"# Model card: {manifest.name} {manifest.version}",
        "",
        _table(
            ["field", "value"],
            [
                ("task", manifest.task),
                ("architecture", f"{manifest.architecture}, input {manifest.input_size} px (whole image resized, ImageNet normalisation)"),
                ("classes", len(manifest.classes)),
                ("trained", manifest.created),
                ("weights sha256", f"`{manifest.weights_sha256}`"),
            ],
        ),
        "",
        "## Intended use",
        "",
        f"Research and engineering use inside dermq as a {kind}: ranking, triage experiments and",
        "integration testing. It is not a medical device, has not been validated clinically, and",
        "must not be used to make or rule out a diagnosis without a qualified clinician.",
        "",
        "## Training data",
        "",
        (
            f"Source: `{source.get('path', 'unknown')}` ({source.get('format', '?')}); {data.get('images', '?')} images, "
            f"split {split.get('train', '?')} train / {split.get('val', '?')} validation "
            f"({split.get('method', '')}, seed {data.get('seed')})."
        ),
        "",
    ]


def _training_lines(manifest: BundleManifest, history: Sequence[dict[str, float]]) -> list[str]:
    s = manifest.summary_metrics
    return [
        "## Training",
        "",
        (
            f"{len(history)} epochs run, {s.get('seconds_per_epoch', 0):.1f} s per epoch. AdamW with linear "
            "warm-up and cosine decay;"
        ),
        "no early stopping; the last epoch's weights are the bundle's."
        if manifest.training_data.get("loss", {}).get("kept_epoch") == "last"
        else f"early stopping on validation loss; the best epoch's weights (epoch {int(s.get('best_epoch', 0))}) are the bundle's.",
        "",
        _table(
            ["epoch", "train loss", "val loss", "seconds"],
            [(int(h["epoch"]), f"{h['train_loss']:.4f}", f"{h['val_loss']:.4f}", f"{h['seconds']:.1f}") for h in history],
        ),
        "",
    ]


def _classifier_card(manifest: BundleManifest, ev: ClassificationEvaluation, history: Sequence[dict[str, float]]) -> str:
    data = manifest.training_data
    n_val = len(ev.labels)
    cm = ev.confusion
    lines = _header(manifest, "skin-condition classifier")
    counts = data.get("classes", {})
    lines += [
        _table(
            ["code", "condition", "train", "validation"],
            [(c, _display(c), counts.get(c, {}).get("train", "?"), counts.get(c, {}).get("val", "?")) for c in manifest.classes],
        ),
        "",
    ]
    notes = data.get("source", {}).get("label_notes", {})
    if notes:
        lines += ["Label mapping notes (approximations):", ""] + [f"- `{k}`: {v}" for k, v in notes.items()] + [""]
    dropped = data.get("source", {}).get("dropped_unmapped", {})
    if dropped:
        lines += [f"Left out (no catalogue condition): {', '.join(f'{k} ({v})' for k, v in dropped.items())}.", ""]
    correct = int(np.trace(cm))
    lines += _training_lines(manifest, history)
    lines += [
        f"## Validation metrics ({n_val} images)",
        "",
        "Proportions with 95 % Wilson confidence intervals. Top-k with k ≥ number of classes is 100 % by definition.",
        "",
        _table(
            ["metric", "value"],
            [
                ("top-1 accuracy", _ci(correct, n_val)),
                ("top-3 accuracy", f"{100 * ev.top_k[3]:.1f} %"),
                ("top-5 accuracy", f"{100 * ev.top_k[5]:.1f} %"),
                ("macro AUROC (one-vs-rest)", "n/a" if ev.macro_auroc is None else f"{ev.macro_auroc:.3f}"),
                ("ECE, 15 bins (calibrated / uncalibrated)", f"{ev.ece:.3f} / {ev.ece_uncalibrated:.3f}"),
                ("NLL (calibrated / uncalibrated)", f"{ev.nll:.3f} / {ev.nll_uncalibrated:.3f}"),
            ],
        ),
        "",
        "### Per class (operating point: the top-ranked class)",
        "",
    ]
    rows = []
    for i, code in enumerate(ev.classes):
        tp, pos = int(cm[i, i]), int(cm[i].sum())
        neg = int(cm.sum() - pos)
        tn = int(neg - (cm[:, i].sum() - tp))
        auroc = ev.per_class[code].auroc
        rows.append((code, _display(code), pos, _ci(tp, pos), _ci(tn, neg), "n/a" if auroc is None else f"{auroc:.3f}"))
    lines += [_table(["code", "condition", "support", "sensitivity", "specificity", "AUROC"], rows), ""]
    lines += [
        "### Confusion matrix (rows: true class, columns: predicted)",
        "",
        _table(["true \\ predicted", *ev.classes], [(c, *cm[i].tolist()) for i, c in enumerate(ev.classes)]),
        "",
        "## Calibration",
        "",
        f"Served probabilities are `softmax(logits / T)` with T = {ev.temperature:.3f}, fitted on the",
        "validation logits by minimising negative log-likelihood. Temperature scaling changes",
        "confidence, never the ranking. Because T is fitted on the same images the metrics above",
        "are measured on, the calibrated ECE is optimistic.",
        "",
        f"![reliability diagram]({RELIABILITY_FILE})",
        "",
        f"![one-vs-rest ROC curves]({ROC_FILE})",
        "",
    ]
    lines += _limitations(manifest, n_val)
    return "\n".join(lines)


def _segmenter_card(manifest: BundleManifest, ev: SegmentationEvaluation, history: Sequence[dict[str, float]]) -> str:
    n_val = len(ev.per_image_dice)
    q = np.percentile(ev.per_image_jaccard, [10, 50, 90]) if n_val else [np.nan] * 3
    lines = _header(manifest, "lesion segmenter")
    lines += _training_lines(manifest, history)
    lines += [
        f"## Validation metrics ({n_val} images)",
        "",
        "Mask = sigmoid(logit) > 0.5 at the input resolution; scores are averaged per image.",
        "",
        _table(
            ["metric", "value"],
            [
                ("Dice (mean)", f"{ev.dice:.3f}"),
                ("Jaccard (mean)", f"{ev.jaccard:.3f}"),
                ("Jaccard 10th / 50th / 90th percentile", " / ".join(f"{v:.3f}" for v in q)),
                ("images with Jaccard < 0.65", int((ev.per_image_jaccard < 0.65).sum())),
            ],
        ),
        "",
        "Jaccard below 0.65 counts as a failed segmentation in the ISIC 2018 challenge's thresholded score.",
        "",
    ]
    lines += _limitations(manifest, n_val)
    return "\n".join(lines)


def _limitations(manifest: BundleManifest, n_val: int) -> list[str]:
    n_train = manifest.training_data.get("split", {}).get("train", "?")
    return [
        "## Limitations",
        "",
        f"- Trained on {n_train} images and measured on {n_val} held-out images drawn from the same source.",
        "  Nothing here shows how the model behaves on other cameras, clinics, populations or skin",
        "  types; a model trained on this much data is not clinically validated.",
        "- Validation images come from the same collection as the training images (random split):",
        "  images of one patient or lesion may sit on both sides, which inflates every figure.",
        "- Only the classes listed above are learned; every other catalogue condition is outside the",
        "  model's knowledge.",
        "- Labels are taken as given; mapped public labels are approximate where noted.",
        "",
    ]


def write_model_card(
    bundle_dir: Path,
    manifest: BundleManifest,
    evaluation: ClassificationEvaluation | SegmentationEvaluation,
    history: Sequence[dict[str, float]],
) -> Path:
    """Write the card (and, for classifiers, its two figures) into ``bundle_dir``."""
    bundle_dir = Path(bundle_dir)
    if isinstance(evaluation, ClassificationEvaluation):
        plot_reliability(evaluation, bundle_dir / RELIABILITY_FILE)
        plot_roc(evaluation, bundle_dir / ROC_FILE)
        text = _classifier_card(manifest, evaluation, history)
    else:
        text = _segmenter_card(manifest, evaluation, history)
    path = bundle_dir / MODEL_CARD_FILE
    atomic_write(path, text.encode())
    return path


# ------------------------------------------------------------------ recipe (default) bundles


def _recipe_header(manifest: BundleManifest, task: str, architecture: str) -> list[str]:
    data = manifest.training_data
    return [
        f"# Model card: {manifest.name} {manifest.version}",
        "",
        _table(["field", "value"], [
            ("task", task),
            ("architecture", architecture),
            ("initialisation", data.get("init")),
            ("weights", f"fp16 safetensors, sha256 `{manifest.weights_sha256}`"),
            ("weights licence", data.get("licence")),
            ("created", manifest.created),
        ]),
        "",
    ]


def _rebuild(kind: str) -> list[str]:
    return ["## Rebuild", "", "```sh",
            f"dermq train dermoscopy-{kind} --data ../shared/data --out pipeline/bundles/dermoscopy-{kind}", "```", ""]


def _record_rows(record: dict) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Per-class rows and confusion rows of a manifest ``evaluation`` record."""
    conf = record["confusion"]
    cm = np.asarray(conf["counts"], dtype=int)
    classes = conf["classes"]
    per_class = []
    for i, code in enumerate(classes):
        tp, pos = int(cm[i, i]), int(cm[i].sum())
        neg = int(cm.sum() - pos)
        tn = int(neg - (cm[:, i].sum() - tp))
        auroc = record["per_class"][code].get("auroc")
        per_class.append((code, _display(code), pos, _ci(tp, pos), _ci(tn, neg), "n/a" if auroc is None else f"{auroc:.3f}"))
    return per_class, [(c, *cm[i].tolist()) for i, c in enumerate(classes)]


def _headline_rows(s: dict[str, float], prefix: str) -> list[tuple[object, ...]]:
    def get(key: str, fmt: str = "{:.3f}") -> str:
        value = s.get(f"{prefix}_{key}")
        return "n/a" if value is None else fmt.format(value)

    return [
        ("images", get("images", "{:.0f}")),
        ("accuracy", get("accuracy")),
        ("balanced accuracy (mean per-class recall)", get("balanced_accuracy")),
        ("macro-F1", get("macro_f1")),
        ("melanoma AUROC (one-vs-rest)", get("melanoma_auroc")),
        ("ECE, 15 bins (calibrated / uncalibrated)", f"{get('ece')} / {get('ece_uncalibrated')}"),
    ]


def dermoscopy_classifier_card(manifest: BundleManifest, history: Sequence[dict[str, float]]) -> str:
    """The default classifier's card, from its manifest: scope, data, splits, every measured figure."""
    data, s = manifest.training_data, manifest.summary_metrics
    parts = data["split"]["parts"]
    outputs = data["source"]["outputs"]
    loss = data.get("loss", {})
    lines = _recipe_header(
        manifest, "classification of dermoscopic images into 7 lesion types",
        f"{manifest.architecture} (EfficientNet-Lite0), input {manifest.input_size} px "
        f"(trained at {data.get('train_input_size')} px), whole image resized",
    ) + [
        "## Scope",
        "",
        "- **Input:** dermoscopic images of single skin lesions, the kind in HAM10000 and the ISIC archive.",
        "- **Output:** probabilities over 7 kinds of mostly pigmented lesions; dermq lists them among its whole",
        "  catalogue, every other condition at 0.",
        "- **Not validated** on clinical (non-dermoscopic) photographs, on skin of colour (the training images",
        "  come from fair-skinned European and Australian populations), on children, or on any condition",
        "  outside the 7 below. A report on an image the gate calls Clinical carries a warning.",
        "- Research and engineering use; not a medical device; it must not make or rule out a diagnosis",
        "  without a qualified clinician. The weights inherit HAM10000's **CC BY-NC-SA 4.0** licence",
        "  (non-commercial); dermq's code stays Apache-2.0.",
        "",
        "## Outputs and ICD-11 coding",
        "",
        _table(["output", "ICD-11 code", "condition", "how it is coded"],
               [(dx, code, _display(code), data["source"].get("label_notes", {}).get(dx) or "exact")
                for code, dx in outputs.items()]),
        "",
        "## Data and splits",
        "",
        f"{data['split']['method']}; seed {data['seed']}. {data['split']['metrics_from']}.",
        "",
        _table(["split", "images", "lesions", "by class"],
               [(name, p["images"], p["lesions"], ", ".join(f"{k} {v}" for k, v in p["by_class"].items())) for name, p in parts.items()]),
        "",
        f"Loss: {loss.get('kind')} weighted by (1 / class frequency)^{loss.get('class_weight_power')} against the "
        f"imbalance ({loss.get('class_weights')}); "
        f"the {loss.get('kept_epoch')} epoch's weights are shipped.",
        f"Augmentation (any orientation, framing, aspect ratio, colour and exposure): {data.get('augmentation')}.",
        "",
        "## Held-out results",
        "",
        "Probabilities are calibrated by one temperature fitted on the calibration split "
        f"(T = {manifest.temperature:.3f}); test and external images were never used for training, "
        "model selection or calibration.",
        "",
        _table(["metric", "test: HAM10000 held-out lesions", "external: ISIC 2017 held-out images"],
               [(a[0], a[1], b[1]) for a, b in zip(_headline_rows(s, "test"), _headline_rows(s, "external"))]),
        "",
        "Serving input size chosen on the calibration split (lowest NLL): "
        + ", ".join(f"{k.rsplit('_', 1)[1]} px {v:.4f}" for k, v in s.items() if k.startswith("calibration_nll_at_")) + ".",
        "",
    ]
    for title, record in manifest.evaluation.items():
        if "confusion" not in record or title.startswith("calibration"):
            continue
        name = "test (HAM10000 held-out lesions)" if title == "validation" else title
        per_class, confusion = _record_rows(record)
        lines += [
            f"### {name}: per class (operating point: the top-ranked class; 95 % Wilson intervals)",
            "",
            _table(["code", "condition", "support", "sensitivity", "specificity", "AUROC"], per_class),
            "",
            f"### {name}: confusion matrix (rows: true, columns: predicted)",
            "",
            _table(["true \\ predicted", *record["confusion"]["classes"]], confusion),
            "",
        ]
    lines += [
        "`performanceIndicator.sensitivity/specificity` in reports are the test split's figures for the",
        "top-ranked condition (the manifest's `metrics`).",
        "",
        f"![reliability diagram (test)]({RELIABILITY_FILE})",
        "",
        f"![one-vs-rest ROC curves (test)]({ROC_FILE})",
        "",
    ]
    return "\n".join(lines + _training_lines(manifest, history) + _rebuild("classifier"))


def dermoscopy_segmenter_card(manifest: BundleManifest, history: Sequence[dict[str, float]]) -> str:
    data, s = manifest.training_data, manifest.summary_metrics
    parts = data["split"]["parts"]
    rows = []
    for label, key, fmt in (("images", "images", "{:.0f}"), ("mean Jaccard", "jaccard", "{:.3f}"),
                            ("median Jaccard", "median_jaccard", "{:.3f}"),
                            ("thresholded Jaccard (< 0.65 counts 0)", "thresholded_jaccard", "{:.3f}"),
                            ("share of images with Jaccard < 0.5", "share_below_0_5", "{:.3f}"), ("mean Dice", "dice", "{:.3f}")):
        rows.append((label, *(("n/a" if s.get(f"{p}_{key}") is None else fmt.format(s[f"{p}_{key}"]))
                              for p in ("test", "classical_test", "external", "classical_external"))))
    lines = _recipe_header(
        manifest, "binary lesion segmentation of dermoscopic images",
        f"{manifest.architecture} (U-Net decoder on an EfficientNet-Lite0 encoder), input {manifest.input_size} px",
    ) + [
        "## Scope",
        "",
        "Dermoscopic images of single lesions (HAM10000, ISIC). Not validated on clinical photographs, on",
        "several lesions in one image, or on skin of colour. Research use; not a medical device.",
        "",
        "## Data and splits",
        "",
        f"{data['split']['method']}; seed {data['seed']}. {data['split']['metrics_from']}.",
        "",
        _table(["split", "images", "lesions"], [(name, p["images"], p["lesions"]) for name, p in parts.items()]),
        "",
        "## Held-out results",
        "",
        "Mask = probability ≥ 0.5 after stretching the network's output back to the image; scores per image,",
        "at each image's own resolution, against the data set's masks.",
        "",
        _table(["metric", "test: HAM10000 held-out lesions", "classical method, same images",
                "external: ISIC 2017 held-out images", "classical method, same images"], rows),
        "",
        "The classical method is dermq's training-free CIELAB segmenter (`DERMQ_SEGMENTER_METHOD=classical`).",
        "",
    ]
    return "\n".join(lines + _training_lines(manifest, history) + _rebuild("segmenter"))

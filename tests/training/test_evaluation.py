"""Validation metrics against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation import (
    dice_jaccard,
    evaluate_classifier,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    one_vs_rest_auroc,
    sensitivity_specificity,
    softmax,
    top_k_accuracy,
)

# rows: true class, columns: predicted class
CONFUSION = np.array([[8, 2, 0], [1, 6, 3], [0, 0, 10]])


def _logits_for(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One image per confusion-matrix count, with a logit of 5 on the predicted class."""
    labels, preds = [], []
    for t in range(confusion.shape[0]):
        for p in range(confusion.shape[1]):
            labels += [t] * int(confusion[t, p])
            preds += [p] * int(confusion[t, p])
    return 5.0 * np.eye(confusion.shape[1])[preds], np.array(labels)


def test_sensitivity_specificity_on_a_known_confusion() -> None:
    sens, spec = sensitivity_specificity(CONFUSION)
    # class 0: 8 of 10 found; of the 20 others, 1 called class 0.
    np.testing.assert_allclose(sens, [8 / 10, 6 / 10, 10 / 10])
    np.testing.assert_allclose(spec, [19 / 20, 18 / 20, 17 / 20])


def test_evaluate_classifier_reports_percent_metrics_per_class() -> None:
    logits, labels = _logits_for(CONFUSION)
    ev = evaluate_classifier(logits, labels, ["2C30", "2F20", "ED80"])
    np.testing.assert_array_equal(ev.confusion, CONFUSION)
    assert ev.per_class["2C30"].sensitivity == 80.0
    assert ev.per_class["2C30"].specificity == 95.0
    assert ev.per_class["ED80"].specificity == 85.0
    assert ev.per_class["2F20"].support == 10
    assert ev.top_k[1] == pytest.approx(24 / 30)
    assert ev.top_k[3] == 1.0  # k >= number of classes
    summary = ev.summary_metrics()
    assert {"top1", "top3", "top5", "macro_auroc", "ece", "ece_uncalibrated"} <= set(summary)


def test_ece_is_zero_for_a_calibrated_predictor_and_large_for_an_overconfident_one() -> None:
    labels = np.zeros(10, dtype=int)
    # Confidence 0.7 in class 0, right 7 times out of 10: perfectly calibrated.
    calibrated = np.tile([0.7, 0.3], (10, 1))
    labels_cal = np.array([0] * 7 + [1] * 3)
    assert expected_calibration_error(calibrated, labels_cal) == pytest.approx(0.0, abs=1e-12)
    # Confidence 0.99, right half the time: ECE = |0.5 - 0.99|.
    overconfident = np.tile([0.99, 0.01], (10, 1))
    labels[5:] = 1
    assert expected_calibration_error(overconfident, labels) == pytest.approx(0.49)


def test_temperature_scaling_lowers_nll_of_overconfident_logits() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 400)
    preds = np.where(rng.random(400) < 0.6, labels, rng.integers(0, 4, 400))
    logits = 8.0 * np.eye(4)[preds]  # very sure, right ~70 % of the time
    t = fit_temperature(logits, labels)
    assert t > 2.0
    assert negative_log_likelihood(logits, labels, t) < 0.5 * negative_log_likelihood(logits, labels)
    assert expected_calibration_error(softmax(logits, t), labels) < expected_calibration_error(softmax(logits), labels)


def test_temperature_of_already_calibrated_logits_is_near_one() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (4000, 5))
    probs = softmax(logits)
    labels = np.array([rng.choice(5, p=p) for p in probs])
    assert fit_temperature(logits, labels) == pytest.approx(1.0, abs=0.1)


def test_top_k_accuracy() -> None:
    probs = np.array([[0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])
    labels = np.array([0, 1, 0])  # ranks 1, 2, 3
    assert top_k_accuracy(probs, labels, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(probs, labels, 2) == pytest.approx(2 / 3)
    assert top_k_accuracy(probs, labels, 3) == 1.0


def test_auroc_per_class_and_undefined_for_absent_class() -> None:
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.2, 0.8, 0.0], [0.4, 0.6, 0.0]])
    labels = np.array([0, 0, 1, 1])
    aurocs = one_vs_rest_auroc(probs, labels)
    assert aurocs[:2] == [1.0, 1.0]
    assert aurocs[2] is None


def test_dice_and_jaccard_on_known_overlap() -> None:
    truth = np.zeros((2, 4, 4))
    pred = np.zeros((2, 4, 4))
    truth[0, 0, :4] = 1  # 4 px
    pred[0, 0, 2:] = 1
    pred[0, 1, :2] = 1  # 4 px, 2 overlapping
    dice, jaccard = dice_jaccard(pred, truth)
    assert dice[0] == pytest.approx(0.5)
    assert jaccard[0] == pytest.approx(1 / 3)
    assert dice[1] == jaccard[1] == 1.0  # both empty: agreement

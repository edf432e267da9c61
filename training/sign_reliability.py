"""How reliable each severity-sign estimator is, measured on synthetic phantoms with known truth.

`measure_reliability` produces the (hits, trials) table `pipeline.severity.signs.MEASURED` ships
(`python -m training.sign_reliability 150 2024`); the serving pipeline only reads that table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from pipeline.quality import wilson_lower_bound
from pipeline.severity.signs import (
    ERYTHEMA_ANCHORS,
    PUSTULATION_ANCHORS,
    SCALE_ANCHORS,
    SIGNS,
    estimate_signs,
    on_anchors,
)
from pipeline.severity.systems import SignKind
from training.phantoms import PHANTOM_CLASSES, Phantom, make_phantom


@dataclass(frozen=True)
class _Trial:
    """How a sign is measured: which phantoms, drawn how, and the true value the estimate must hit."""

    classes: tuple[str, ...]
    params: Callable[[np.random.Generator], dict[str, float]]
    truth: Callable[[Phantom], float]
    whole_frame: bool = False  # counts: the lesion mask is the whole frame, so the blobs must be found by colour


RED_CLASSES = ("EA90", "EB00", "ED80", "ED92.0")
_SCALE_TRIAL = _Trial(("EA90",), lambda r: {"scale": r.uniform(0.0, 0.7)}, lambda p: on_anchors(SCALE_ANCHORS, p.scale_fraction))


def _count_trial(code: str, most: int, truth: Callable[[Phantom], float]) -> _Trial:
    return _Trial((code,), lambda r: {"count": int(r.integers(0, most + 1))}, truth, whole_frame=True)


TRIALS: dict[str, _Trial] = {
    "erythema": _Trial(RED_CLASSES, lambda r: {"redness": r.uniform(0.0, 26.0)},
                       lambda p: on_anchors(ERYTHEMA_ANCHORS, p.erythema_delta_a)),
    "desquamation": _SCALE_TRIAL,
    "dryness": _SCALE_TRIAL,
    "pustulation": _count_trial("ED80", 30, lambda p: on_anchors(PUSTULATION_ANCHORS, len(p.pustules))),
    "wheals": _count_trial("EB00", 20, lambda p: len(p.spots)),
    "acneLesions": _count_trial("ED80", 30, lambda p: len(p.spots)),
    "pustules": _count_trial("ED80", 30, lambda p: len(p.pustules)),
    "nodules": _count_trial("ED92.0", 8, lambda p: len(p.spots)),
    "lesionArea": _Trial(tuple(PHANTOM_CLASSES), lambda r: {},
                         lambda p: 100.0 * p.mask.sum() / max(int(p.field_of_view.sum()), 1)),
    "hairLoss": _Trial(("ED70.2",), lambda r: {"count": int(r.integers(0, 4))}, lambda p: 100 * p.hair_loss_fraction),
    "depigmentation": _Trial(("ED63.0",), lambda r: {"count": int(r.integers(0, 5))},
                             lambda p: 100 * p.depigmented_fraction),
}


def is_hit(kind: SignKind, estimate: float, truth: float) -> bool:
    """The reliability criterion of MEASURED for one estimate."""
    if kind == "ordinal":
        return abs(round(4 * estimate) - round(4 * truth)) <= 1
    if kind == "count":
        return abs(estimate - truth) <= max(1.0, 0.2 * truth)
    return abs(estimate - truth) <= max(3.0, 0.15 * truth)


def measure_reliability(per_sign: int, seed: int, signs: Iterable[str] | None = None,
                        sizes: tuple[int, ...] = (128, 192, 256, 320)) -> dict[str, tuple[int, int]]:
    """(hits, trials) per measurable sign on `per_sign` fresh phantoms each (seeds derived from `seed`),
    their sides drawn from `sizes` so the estimators are judged across resolutions."""
    results = {}
    for k, sign in enumerate(signs or TRIALS):
        trial, hits = TRIALS[sign], 0
        rng = np.random.default_rng([seed, k])
        for i in range(per_sign):
            size = int(rng.choice(sizes))
            p = make_phantom(int(rng.integers(2**31)), label=trial.classes[i % len(trial.classes)], size=size,
                             **trial.params(rng))
            lesion = np.ones_like(p.mask) if trial.whole_frame else p.mask
            estimate = estimate_signs(p.rgb, lesion, None, [sign])[sign].value
            hits += int(is_hit(SIGNS[sign], estimate, trial.truth(p)))
        results[sign] = (hits, per_sign)
    return results


if __name__ == "__main__":
    import sys

    per, start = (int(a) for a in (sys.argv[1:3] + ["150", "2024"][len(sys.argv[1:3]):]))
    for name, (hit, n) in measure_reliability(per, start).items():
        print(f"{name:15s} {hit:4d}/{n}  {100 * hit / n:5.1f} %  Wilson lower bound {wilson_lower_bound(hit, n):5.1f}")

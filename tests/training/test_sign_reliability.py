"""The reliability harness behind pipeline.severity.signs.MEASURED, re-run on fresh phantoms."""

from __future__ import annotations

from pipeline.quality import wilson_lower_bound
from pipeline.severity.signs import MEASURED, confidence_of
from training.sign_reliability import is_hit, measure_reliability


def test_stated_confidence_does_not_exceed_measured_reliability() -> None:
    for sign, (hits, total) in MEASURED.items():
        assert confidence_of(sign) <= wilson_lower_bound(hits, total) + 1e-9
    fresh = measure_reliability(per_sign=8, seed=777, sizes=(128, 160, 192))
    assert set(fresh) == set(MEASURED)
    for sign, (hits, total) in fresh.items():
        upper = 100.0 - wilson_lower_bound(total - hits, total)  # Wilson upper bound: the sampling slack
        assert confidence_of(sign) <= upper, (sign, hits, total)
        assert hits / total >= 0.75, (sign, hits, total)


def test_hit_criteria() -> None:
    assert is_hit("ordinal", 0.5, 0.75) and not is_hit("ordinal", 0.0, 0.75)  # within one grade
    assert is_hit("count", 11, 10) and not is_hit("count", 13, 10)  # ±max(1, 20 %)
    assert is_hit("percent", 12, 10) and not is_hit("percent", 20, 10)  # ±max(3 points, 15 %)

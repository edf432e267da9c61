"""Tests for the scoring-system catalogue (pipeline.severity.systems, pipeline.severity.formulas)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from pipeline.catalogue import DEFAULT_CATALOGUE_PATH
from pipeline.severity.body_sites import BODY_SITES, HAIR_BEARING_SITES
from pipeline.severity.formulas import area_score, round_half_up, step, vasi_level
from pipeline.severity.systems import (
    AUTOMATIC,
    MANUAL,
    SIGN_KINDS,
    SYSTEMS,
    Band,
    InvalidItems,
    Item,
    ScoringSystem,
    WeightedSum,
    systems_for_condition,
)

EXPECTED_AUTOMATIC = ("apasi", "aeasi", "ascorad", "auas", "aihs4", "aladin", "agppga", "asalt", "avasi")
EXPECTED_MANUAL = ("pasi", "easi", "scorad", "uas", "uas7", "ihs4", "gags", "dlqi", "pga", "pure4", "sevenPc",
                   "uct", "salt")
ADDITIVE = ("apasi", "aeasi", "aihs4", "asalt", "avasi")
DOCS = Path(__file__).resolve().parents[3] / "docs" / "severity.md"
ALL = list(SYSTEMS.values())
ids = [s.code for s in ALL]


def _values(system: ScoringSystem, pick: Callable[[Item], float]) -> dict[str, float]:
    return {item.code: pick(item) for item in system.items}


def _middle(item: Item) -> float:
    if item.code == "age":
        return 30.0
    return float(math.ceil((item.minimum + item.maximum) / 2))


def _patient(system: ScoringSystem) -> dict[str, float]:
    """One age for every site of the patient (EASI's only per-patient input)."""
    return {"age": 30.0} if any(i.code == "age" for i in system.items) else {}


def _a_site(system: ScoringSystem) -> str:
    return min(system.allowed_sites) if system.allowed_sites else "trunkFront"


def test_catalogue_has_every_system_of_the_spec() -> None:
    assert AUTOMATIC == EXPECTED_AUTOMATIC
    assert MANUAL == EXPECTED_MANUAL
    assert list(SYSTEMS) == [*EXPECTED_AUTOMATIC, *EXPECTED_MANUAL]
    assert all(SYSTEMS[c].automatic for c in AUTOMATIC) and not any(SYSTEMS[c].automatic for c in MANUAL)


@pytest.mark.parametrize(
    ("code", "score_range"),
    [("apasi", (0, 72)), ("pasi", (0, 72)), ("easi", (0, 72)), ("scorad", (0, 103)), ("uas", (0, 6)),
     ("uas7", (0, 42)), ("gags", (0, 44)), ("dlqi", (0, 30)), ("pga", (0, 4)), ("agppga", (0, 4)),
     ("pure4", (0, 4)), ("sevenPc", (0, 10)), ("uct", (0, 16)), ("salt", (0, 100)), ("asalt", (0, 100))],
)
def test_score_ranges_are_the_published_ones(code: str, score_range: tuple[float, float]) -> None:
    assert SYSTEMS[code].score_range == score_range


# --- bands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_bands_cover_the_range_without_gaps_or_overlaps(system: ScoringSystem) -> None:
    bands = system.bands
    assert bands[0].lower == system.score_range[0]
    assert bands[-1].upper is None and bands[-1].lower <= system.score_range[1]
    for before, after in pairwise(bands):
        assert before.upper == after.lower and before.lower < before.upper
    assert {b.intensity for b in bands} <= {0, 1, 2, 3}
    assert len({b.category for b in bands}) == len(bands)


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_interpret_edges(system: ScoringSystem) -> None:
    resolution = 10.0 ** -system.decimals
    assert system.interpret(system.score_range[0]) is system.bands[0]
    assert system.interpret(system.score_range[1]) is system.bands[-1]
    for before, band in zip(system.bands, system.bands[1:]):
        assert system.interpret(band.lower) is band
        assert system.interpret(band.lower - resolution) is before
    with pytest.raises(ValueError):
        system.interpret(system.score_range[0] - 1)


@pytest.mark.parametrize(
    ("code", "score", "category", "intensity"),
    [
        ("easi", 0, "Clear", 0), ("easi", 1.0, "Almost clear", 1), ("easi", 7.0, "Mild", 1),
        ("easi", 7.05, "Moderate", 2),  # reported as 7.1
        ("easi", 50.1, "Very severe", 3),
        ("pasi", 10.0, "Mild", 1), ("pasi", 10.1, "Moderate to severe", 3),
        ("scorad", 24.9, "Mild", 1), ("scorad", 25, "Moderate", 2), ("scorad", 50, "Severe", 3),
        ("ihs4", 3, "Mild", 1), ("ihs4", 4, "Moderate", 2), ("ihs4", 11, "Severe", 3),
        ("uct", 11, "Poorly controlled", 3), ("uct", 12, "Well controlled", 1), ("uct", 16, "Complete control", 0),
        ("salt", 20, "Mild", 1), ("salt", 20.1, "Moderate", 2), ("salt", 50, "Severe", 3),
        ("sevenPc", 2, "Low suspicion", 1), ("sevenPc", 3, "Suspicious", 3),
        ("pure4", 0, "Negative", 0), ("pure4", 1, "Positive", 3),
    ],
)
def test_interpret_published_cut_offs(code: str, score: float, category: str, intensity: int) -> None:
    band = SYSTEMS[code].interpret(score)
    assert (band.category, band.intensity) == (category, intensity)


def test_bands_that_do_not_meet_are_rejected() -> None:
    gap = (Band("None", 0, 0, 1), Band("Mild", 1, 2, None))
    with pytest.raises(ValueError, match="do not meet"):
        ScoringSystem("x", "x", "x", False, (Item("a", "a", "count", 0, 9, "clinician"),), gap,
                      WeightedSum({"a": 1.0}), "ref", ("EA90",))
    with pytest.raises(ValueError, match="upper bound"):
        ScoringSystem("x", "x", "x", False, (Item("a", "a", "count", 0, 9, "clinician"),),
                      (Band("None", 0, 0, 10),), WeightedSum({"a": 1.0}), "ref", ("EA90",))


# --- items and check -------------------------------------------------------------------------


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_valid_values_have_no_problems(system: ScoringSystem) -> None:
    for pick in (lambda i: i.minimum, _middle, lambda i: i.maximum):
        assert system.check(_values(system, pick)) == []


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_check_reports_missing_items_by_code(system: ScoringSystem) -> None:
    problems = system.check({})
    assert [(p.item, p.kind) for p in problems] == [(i.code, "missing") for i in system.items]
    assert all(p.item in p.message for p in problems)


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_check_reports_out_of_range_values(system: ScoringSystem) -> None:
    for item in system.items:
        for bad in (item.maximum + 1, item.minimum - 1):
            values = _values(system, _middle) | {item.code: bad}
            assert [(p.item, p.kind) for p in system.check(values)] == [(item.code, "out_of_range")]


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_check_reports_non_integer_values(system: ScoringSystem) -> None:
    for item in system.items:
        values = _values(system, _middle) | {item.code: item.minimum + 0.25}
        kinds = [(p.item, p.kind) for p in system.check(values)]
        assert kinds == ([(item.code, "not_integer")] if item.integer or item.half_points else [])


@pytest.mark.parametrize("system", ALL, ids=ids)
@pytest.mark.parametrize("bad", ["2", float("nan"), float("inf"), [1]])
def test_check_reports_values_that_are_not_numbers(system: ScoringSystem, bad: Any) -> None:
    item = system.items[0]
    values = _values(system, _middle) | {item.code: bad}
    assert [(p.item, p.kind) for p in system.check(values)] == [(item.code, "not_a_number")]


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_check_reports_unknown_items(system: ScoringSystem) -> None:
    values = _values(system, _middle) | {"bogusItem": 1}
    assert [(p.item, p.kind) for p in system.check(values)] == [("bogusItem", "unknown_item")]


def test_booleans_are_answers_only_for_yes_no_items() -> None:
    pure4 = SYSTEMS["pure4"]
    assert pure4.check({i.code: True for i in pure4.items}) == []
    assert pure4.local_score({i.code: True for i in pure4.items}) == 4
    ihs4 = SYSTEMS["ihs4"]
    problems = ihs4.check({"nodules": True, "abscesses": 0, "tunnels": 0})
    assert [(p.item, p.kind) for p in problems] == [("nodules", "not_a_number")]


@pytest.mark.parametrize("code", AUTOMATIC)
def test_check_by_source_separates_clinical_inputs_from_ai_items(code: str) -> None:
    system = SYSTEMS[code]
    clinical = {i.code: _middle(i) for i in system.clinician_items()}
    assert system.check(clinical, sources=("clinician",)) == []
    assert system.ai_items() and set(system.ai_items()) | set(system.clinician_items()) == set(system.items)
    ai_code = system.ai_items()[0].code
    problems = system.check(clinical | {ai_code: 1}, sources=("clinician",))
    assert [(p.item, p.kind) for p in problems] == [(ai_code, "unknown_item")]
    missing = system.check({}, sources=("clinician",))
    assert [p.item for p in missing] == [i.code for i in system.clinician_items()]


def test_local_score_refuses_invalid_items_with_the_problems() -> None:
    with pytest.raises(InvalidItems) as error:
        SYSTEMS["apasi"].local_score({"erythema": 5, "induration": 1, "desquamation": 1})
    assert [(p.item, p.kind) for p in error.value.problems] == [("erythema", "out_of_range"), ("area", "missing")]


def test_item_lookup() -> None:
    assert SYSTEMS["uas"].item("itch").maximum == 3
    with pytest.raises(KeyError, match="itch"):
        SYSTEMS["dlqi"].item("itch")


# --- AI items and signs ----------------------------------------------------------------------


@pytest.mark.parametrize("code", AUTOMATIC)
def test_ai_items_name_known_signs(code: str) -> None:
    for item in SYSTEMS[code].ai_items():
        assert item.sign in SIGN_KINDS
        if item.kind == "ordinal" and SIGN_KINDS[item.sign] != "ordinal":
            assert item.grade_thresholds
    for item in SYSTEMS[code].clinician_items():
        assert item.sign is None


def test_item_invariants_are_enforced() -> None:
    with pytest.raises(ValueError, match="grade_thresholds"):
        Item("wheals", "Wheals", "ordinal", 0, 3, "ai", sign="wheals")
    with pytest.raises(ValueError, match="sign"):
        Item("erythema", "Erythema", "ordinal", 0, 4, "ai")
    with pytest.raises(ValueError, match="sign"):
        Item("itch", "Itch", "ordinal", 0, 3, "clinician", sign="erythema")


@pytest.mark.parametrize(("count", "grade"), [(0, 0), (1, 1), (19, 1), (20, 2), (50, 2), (51, 3), (300, 3)])
def test_wheal_count_grades(count: int, grade: int) -> None:
    assert SYSTEMS["auas"].item("wheals").from_sign(count) == grade


def test_from_sign_scales_ordinal_signs_and_clamps_percentages() -> None:
    erythema = SYSTEMS["apasi"].item("erythema")
    assert [erythema.from_sign(m) for m in (0.0, 0.3, 0.5, 0.62, 1.0)] == [0, 1, 2, 2, 4]
    assert SYSTEMS["aeasi"].item("oedema").from_sign(0.5) == 2  # 1.5 rounds half up
    hair = SYSTEMS["asalt"].item("hairLoss")
    assert hair.from_sign(37.5) == 37.5 and hair.from_sign(120) == 100
    with pytest.raises(ValueError, match="clinical input"):
        SYSTEMS["apasi"].item("area").from_sign(0.5)


# --- formulas --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("percent", "score"), [(0, 0), (0.5, 1), (9.9, 1), (10, 2), (29, 2), (30, 3), (50, 4), (70, 5), (89, 5),
                           (90, 6), (100, 6)],
)
def test_area_score(percent: float, score: int) -> None:
    assert area_score(percent) == score


def test_step_vasi_level_and_rounding() -> None:
    assert step(5, (1, 20, 51)) == 1 and step(0.1, (1.5,), above_zero=True) == 1
    assert [vasi_level(p) for p in (0, 4, 6, 30, 80, 96)] == [0, 0, 10, 25, 75, 100]
    assert round_half_up(2.25, 1) == 2.3 and round_half_up(0.1 * 3, 1) == 0.3
    assert round_half_up(7.5, 0) == 8 and isinstance(round_half_up(7.5, 0), int)


def test_apasi_local_and_contribution_use_the_site_region() -> None:
    apasi = SYSTEMS["apasi"]
    values = {"erythema": 2, "induration": 2, "desquamation": 1, "area": 20}
    assert apasi.local_score(values, "legLeft") == 10  # (2 + 2 + 1) x area score 2
    assert apasi.contribution(values, "legLeft") == 4.0  # x 0.4
    assert apasi.contribution(values, "headFront") == 1.0  # x 0.1
    assert apasi.contribution(values, "genital") == 3.0  # trunk x 0.3
    with pytest.raises(ValueError, match="body site"):
        apasi.contribution(values)


def test_sites_of_one_region_pool_their_areas_and_weight_severity_by_area() -> None:
    apasi = SYSTEMS["apasi"]
    left = {"erythema": 2, "induration": 2, "desquamation": 2, "area": 5}
    right = {"erythema": 1, "induration": 1, "desquamation": 1, "area": 10}
    total, shares = apasi.global_score([("armLeft", left), ("armRight", right)])
    # Upper limbs: 15 % involved (area score 2), mean severity (5 x 6 + 10 x 3) / 15 = 4.
    assert total == 1.6 and shares == [0.8, 0.8]
    big = {"erythema": 4, "induration": 4, "desquamation": 4, "area": 60}
    assert apasi.global_score([("trunkFront", big), ("trunkBack", big)])[0] == 21.6  # 0.3 x 12 x 6: 120 % capped at 100 %


def test_sites_of_one_salt_quadrant_are_averaged() -> None:
    total, shares = SYSTEMS["asalt"].global_score([("headTop", {"hairLoss": 50}), ("scalp", {"hairLoss": 30})])
    assert total == 16.0 and shares == [10.0, 6.0]  # vertex 40 % x mean 40 %


@pytest.mark.parametrize("code", ADDITIVE)
def test_global_contributions_sum_to_the_total(code: str) -> None:
    system = SYSTEMS[code]
    sites = sorted(system.allowed_sites or BODY_SITES)
    picks = [lambda i: i.maximum, _middle, lambda i: i.minimum + 1]
    pairs = [(site, _values(system, picks[n % 3]) | _patient(system)) for n, site in enumerate(sites)]
    total, shares = system.global_score(pairs)
    assert len(shares) == len(pairs)
    assert total == pytest.approx(sum(shares), abs=len(shares) * 10.0 ** -system.decimals / 2 + 1e-9)
    single_site, single_values = pairs[0]
    assert system.global_score([pairs[0]]) == (
        system.contribution(single_values, single_site), [system.contribution(single_values, single_site)]
    )


@pytest.mark.parametrize("system", [s for s in ALL if not s.supports_global], ids=lambda s: s.code)
def test_systems_without_regional_weights(system: ScoringSystem) -> None:
    values = _values(system, _middle)
    site = _a_site(system)
    assert system.contribution(values, site) == system.local_score(values, site)
    with pytest.raises(ValueError, match="whole-body"):
        system.global_score([(site, values)])


def test_aeasi_uses_child_weights_under_8() -> None:
    aeasi = SYSTEMS["aeasi"]
    values = {"erythema": 2, "oedema": 2, "excoriation": 1, "lichenification": 1, "area": 35}  # 6 x 3 = 18
    assert aeasi.local_score(values | {"age": 5}, "headFront") == 18
    assert aeasi.contribution(values | {"age": 5}, "headFront") == 3.6  # x 0.2
    assert aeasi.contribution(values | {"age": 30}, "headFront") == 1.8  # x 0.1
    assert aeasi.contribution(values | {"age": 7.9}, "footLeft") == 5.4  # x 0.3
    assert aeasi.contribution(values | {"age": 8}, "footLeft") == 7.2  # x 0.4
    assert aeasi.contribution(values | {"age": 5}, "trunkBack") == aeasi.contribution(values | {"age": 30}, "trunkBack")


def test_aeasi_global_needs_one_age_for_the_patient() -> None:
    values = {"erythema": 1, "oedema": 1, "excoriation": 1, "lichenification": 1, "area": 10}
    with pytest.raises(ValueError, match="age"):
        SYSTEMS["aeasi"].global_score([("headFront", values | {"age": 5}), ("legLeft", values | {"age": 6})])


def test_easi_form_uses_child_weights_under_8() -> None:
    easi = SYSTEMS["easi"]
    values = {i.code: 0.0 for i in easi.items} | {"headErythema": 3, "headArea": 95}  # 3 x 6 = 18 in the head
    assert easi.local_score(values | {"age": 4}) == 3.6
    assert easi.local_score(values | {"age": 40}) == 1.8


# --- body sites ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["salt", "asalt"])
def test_hair_loss_scores_only_hair_bearing_head_sites(code: str) -> None:
    system = SYSTEMS[code]
    assert system.allowed_sites == HAIR_BEARING_SITES
    assert not system.allows_site("armLeft") and not system.allows_site("headFront")
    assert system.allows_site("headTop")
    values = _values(system, _middle)
    with pytest.raises(ValueError, match="armLeft"):
        system.local_score(values, "armLeft")
    if system.supports_global:
        with pytest.raises(ValueError, match="armLeft"):
            system.global_score([("headTop", values), ("armLeft", values)])


def test_unknown_body_sites_are_refused() -> None:
    assert not SYSTEMS["apasi"].allows_site("wing")
    with pytest.raises(ValueError, match="wing"):
        SYSTEMS["apasi"].local_score({"erythema": 1, "induration": 1, "desquamation": 1, "area": 5}, "wing")


# --- questionnaire, pathologies, docs ---------------------------------------------------------


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_questionnaire_lists_every_item_and_band(system: ScoringSystem) -> None:
    payload = json.loads(json.dumps(system.questionnaire(), allow_nan=False))
    assert payload["code"] == system.code and payload["identifier"].endswith(system.code)
    assert payload["mode"] == (["manual"] if not system.automatic
                               else ["local", "global"] if system.supports_global else ["local"])
    assert [i["code"] for i in payload["items"]] == [i.code for i in system.items]
    for entry, item in zip(payload["items"], system.items):
        assert entry["source"] == item.source and entry["type"] == item.kind
        assert (entry["minimum"], entry["maximum"], entry["integer"]) == (item.minimum, item.maximum, item.integer)
        assert entry["text"] and set(entry) >= {"description", "sign"}
    assert len(payload["bands"]) == len(system.bands)
    assert payload["scoreRange"] == {"minimum": system.score_range[0], "maximum": system.score_range[1]}
    assert payload["reference"] and payload["pathologies"] == list(system.pathologies)
    expected_sites = sorted(system.allowed_sites) if system.allowed_sites is not None else None
    assert payload["allowedBodySites"] == expected_sites


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_pathologies_exist_in_the_condition_catalogue(system: ScoringSystem) -> None:
    codes = {entry["code"] for entry in json.loads(DEFAULT_CATALOGUE_PATH.read_text(encoding="utf-8"))}
    assert system.pathologies and set(system.pathologies) <= codes


@pytest.mark.parametrize(
    ("condition", "included", "excluded"),
    [
        ("EA90", {"apasi", "pasi", "pga", "pure4", "dlqi"}, {"agppga", "easi"}),
        ("EA90.40", {"agppga", "apasi", "pasi"}, {"aeasi"}),
        ("ea80.2", {"aeasi", "easi", "ascorad", "scorad"}, {"pasi"}),
        ("EB00.01", {"auas", "uas", "uas7", "uct"}, set()),
        ("EB00.1", {"uas", "uct"}, {"uas7"}),
        ("ED92.0", {"aihs4", "ihs4"}, set()),
        ("ED80.2", {"aladin", "gags"}, set()),
        ("ED70.2", {"asalt", "salt"}, {"avasi"}),
        ("ED63.0", {"avasi"}, set()),
        ("2C30.1", {"sevenPc"}, {"dlqi"}),
        ("2F20.00", {"sevenPc"}, set()),
    ],
)
def test_systems_for_condition_cover_child_codes(condition: str, included: set[str], excluded: set[str]) -> None:
    found = {s.code for s in systems_for_condition(condition)}
    assert included <= found and not excluded & found


def test_applies_to_follows_the_icd11_hierarchy() -> None:
    assert SYSTEMS["uas7"].applies_to("EB00.01") and SYSTEMS["uas7"].applies_to("eb00.0")
    assert not SYSTEMS["uas7"].applies_to("EB00")  # the parent is wider than spontaneous urticaria
    assert SYSTEMS["agppga"].applies_to("EA90.40") and not SYSTEMS["agppga"].applies_to("EA90.4")


def test_no_system_for_unrelated_conditions() -> None:
    assert systems_for_condition("1E80") == [] and systems_for_condition("EA9") == []


def test_docs_describe_every_system() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for code in SYSTEMS:
        assert f"`{code}`" in text, code
    for site in BODY_SITES:
        assert f"`{site}`" in text, site

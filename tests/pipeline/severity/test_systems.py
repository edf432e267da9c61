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
    ANNOTATION_TITLE,
    AUTOMATIC,
    EXTRA_TEXTS,
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

EXPECTED_AUTOMATIC = ("apasi", "aeasi", "ascorad", "auas", "aihs4", "aladin", "agppga", "asalt", "avasi", "awosi",
                      "nsil")
EXPECTED_MANUAL = ("pasi", "easi", "scorad", "uas", "uas7", "ihs4", "gags", "dlqi", "pga", "pure4", "sevenPc",
                   "uct", "salt", "resvech", "scovid")
# The reference client's item codes (integration contract): every one is an item of its system.
CONTRACT_ITEMS = {
    "apasi": {"surface", "desquamation", "erythema", "induration"},
    "aeasi": {"surface", "patientAge", "redness", "thickness", "scratching", "lichenification"},
    "ascorad": {"surface", "pruritus", "sleeplessness", "crusting", "dryness", "erythema", "excoriation",
                "lichenification", "swelling"},
    "auas": {"wheals", "pruritus"}, "aihs4": {"nodule", "abscess", "drainingTunnel"}, "aladin": {"acne"},
    "agppga": {"erythema", "desquamation", "pustulation"}, "nsil": {"dryness", "erythema", "inflammations"},
    "dlqi": {f"question{i}" for i in range(1, 11)}, "pure4": {f"question{i}" for i in range(1, 5)},
    "sevenPc": {"changeInSize", "irregularPigmentation", "irregularBorder", "inflammation", "largerThanOtherLesions",
                "itchOrAlteredSensation", "crustingOrBleeding"},
    "pasi": {"surface", "erythema", "induration", "desquamation"},
    "scorad": {"surface", "erythema", "swelling", "crusting", "excoriation", "lichenification", "dryness", "pruritus",
               "sleeplessness"},
    "uas": {"pruritus", "wheals"}, "uct": {"manifestations", "qualityOfLife", "treatmentNotEnough",
                                           "overallUnderControl"},
    "gags": {"forehead", "rightCheek", "leftCheek", "nose", "chin", "chestAndUpperBack"},
    "pga": {"erythema", "desquamation", "induration"}, "ihs4": {"nodule", "abscess", "drainingTunnel"},
    "resvech": {"woundDimensions", "tissues", "edges", "tissueInWoundBed", "exudate", "frequencyOfPain",
                "macerationAroundWound", "tunneling", "increasingPain", "erythemaAroundWound", "edemaAroundWound",
                "temperatureRise", "increasingExudate", "purulentExudate", "tissueFriableOrBleedsEasily",
                "stationaryWound", "biofilmCompatibleTissue", "odor", "hypergranulation", "increasingWound",
                "satelliteLesions", "tissuePaleness"},
    "scovid": {"pain", "pruritus", "fever", "cough", "cephalea", "myalgiaOrArthralgia", "malaise",
               "lossOfTasteOrOlfactory", "shortnessOfBreath", "otherSkinProblems"},
}
MEDIA = {"apasi": "lesion", "aeasi": "lesion", "ascorad": "lesion", "auas": "annotation", "aihs4": "annotation",
         "aladin": "annotation", "nsil": "annotation", "agppga": "none", "asalt": "hair", "avasi": "depigmentation",
         "awosi": "wound"}
ADDITIVE = ("apasi", "aeasi", "aihs4", "asalt", "avasi")
ANY_CONDITION = ("nsil", "scovid")
DOCS = Path(__file__).resolve().parents[3] / "docs" / "severity.md"
ALL = list(SYSTEMS.values())
ids = [s.code for s in ALL]


def _values(system: ScoringSystem, pick: Callable[[Item], float]) -> dict[str, float]:
    return {item.code: pick(item) for item in system.items}


def _middle(item: Item) -> float:
    if item.code in ("age", "patientAge"):
        return 30.0
    return float(math.ceil((item.minimum + item.maximum) / 2))


def _patient(system: ScoringSystem) -> dict[str, float]:
    """One age for every site of the patient (EASI's only per-patient input)."""
    return {i.code: 30.0 for i in system.items if i.code in ("age", "patientAge")}


def _a_site(system: ScoringSystem) -> str:
    return min(system.allowed_sites) if system.allowed_sites else "trunkFront"


def test_catalogue_has_every_system_of_the_spec() -> None:
    assert AUTOMATIC == EXPECTED_AUTOMATIC
    assert MANUAL == EXPECTED_MANUAL
    assert list(SYSTEMS) == [*EXPECTED_AUTOMATIC, *EXPECTED_MANUAL]
    assert all(SYSTEMS[c].automatic for c in AUTOMATIC) and not any(SYSTEMS[c].automatic for c in MANUAL)


@pytest.mark.parametrize(
    ("code", "score_range"),
    [("apasi", (0, 72)), ("pasi", (0, 72)), ("easi", (0, 72)), ("scorad", (0, 103)), ("ascorad", (0, 103)),
     ("uas", (0, 6)), ("uas7", (0, 42)), ("gags", (0, 44)), ("dlqi", (0, 30)), ("pga", (0, 4)), ("agppga", (0, 4)),
     ("pure4", (0, 4)), ("sevenPc", (0, 10)), ("uct", (0, 16)), ("salt", (0, 100)), ("asalt", (0, 100)),
     ("avasi", (0, 100)), ("awosi", (0, 19)), ("nsil", (0, 9)), ("resvech", (0, 79)), ("scovid", (0, 44))],
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
        ("sevenPc", 0, "Low risk", 1), ("sevenPc", 2, "Low risk", 1), ("sevenPc", 3, "High risk", 3),
        ("avasi", 25, "Mild", 1), ("avasi", 50, "Moderate", 2), ("avasi", 75, "Severe", 3),
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
    assert [(p.item, p.kind) for p in problems] == [(i.code, "missing") for i in system.items if not i.optional]
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
    problems = ihs4.check({"nodule": True, "abscess": 0, "drainingTunnel": 0})
    assert [(p.item, p.kind) for p in problems] == [("nodule", "not_a_number")]


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
    assert [p.item for p in missing] == [i.code for i in system.clinician_items() if not i.optional]


def test_local_score_refuses_invalid_items_with_the_problems() -> None:
    with pytest.raises(InvalidItems) as error:
        SYSTEMS["apasi"].local_score({"erythema": 5, "induration": 1, "desquamation": 1})
    assert [(p.item, p.kind) for p in error.value.problems] == [("erythema", "out_of_range"), ("surface", "missing")]


def test_item_lookup() -> None:
    assert SYSTEMS["uas"].item("pruritus").maximum == 3
    with pytest.raises(KeyError, match="pruritus"):
        SYSTEMS["dlqi"].item("pruritus")


@pytest.mark.parametrize("code", sorted(CONTRACT_ITEMS))
def test_item_codes_are_the_reference_clients(code: str) -> None:
    system = SYSTEMS[code]
    assert CONTRACT_ITEMS[code] <= {i.code for i in system.items}
    # Manual systems have exactly the client's items; automatic ones may keep internal AI items only.
    if not system.automatic:
        assert {i.code for i in system.items} == CONTRACT_ITEMS[code]


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
    assert SYSTEMS["aeasi"].item("thickness").from_sign(0.5) == 2  # 1.5 rounds half up
    hair = SYSTEMS["asalt"].item("hairLoss")
    assert hair.from_sign(37.5) == 37.5 and hair.from_sign(120) == 100
    with pytest.raises(ValueError, match="clinical input"):
        SYSTEMS["apasi"].item("surface").from_sign(0.5)


def test_presence_signs_read_as_yes_from_50_percent() -> None:
    item = SYSTEMS["awosi"].item("exudationPurulent")
    assert SIGN_KINDS[item.sign] == "presence" and item.kind == "boolean"
    assert [item.from_sign(p) for p in (0, 49.9, 50, 100)] == [0, 0, 1, 1]
    with pytest.raises(ValueError, match="presence"):
        Item("x", "x", "ordinal", 0, 1, "ai", sign="exudationPurulent", grade_thresholds=(50,))


@pytest.mark.parametrize(("count", "grade"), [(0, 0), (1, 1), (4, 1), (5, 2), (14, 2), (15, 3), (80, 3)])
def test_nsil_inflammation_grades(count: int, grade: int) -> None:
    assert SYSTEMS["nsil"].item("inflammations").from_sign(count) == grade


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
    values = {"erythema": 2, "induration": 2, "desquamation": 1, "surface": 20}
    assert apasi.local_score(values, "legLeft") == 10  # (2 + 2 + 1) x area score 2
    assert apasi.contribution(values, "legLeft") == 4.0  # x 0.4
    assert apasi.contribution(values, "headFront") == 1.0  # x 0.1
    assert apasi.contribution(values, "genital") == 3.0  # trunk x 0.3
    with pytest.raises(ValueError, match="body site"):
        apasi.contribution(values)


def test_sites_of_one_region_pool_their_areas_and_weight_severity_by_area() -> None:
    apasi = SYSTEMS["apasi"]
    left = {"erythema": 2, "induration": 2, "desquamation": 2, "surface": 5}
    right = {"erythema": 1, "induration": 1, "desquamation": 1, "surface": 10}
    total, shares = apasi.global_score([("armLeft", left), ("armRight", right)])
    # Upper limbs: 15 % involved (area score 2), mean severity (5 x 6 + 10 x 3) / 15 = 4.
    assert total == 1.6 and shares == [0.8, 0.8]
    big = {"erythema": 4, "induration": 4, "desquamation": 4, "surface": 60}
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
    values = {"redness": 2, "thickness": 2, "scratching": 1, "lichenification": 1, "surface": 35}  # 6 x 3 = 18
    age = "patientAge"
    assert aeasi.local_score(values | {age: 5}, "headFront") == 18
    assert aeasi.contribution(values | {age: 5}, "headFront") == 3.6  # x 0.2
    assert aeasi.contribution(values | {age: 30}, "headFront") == 1.8  # x 0.1
    assert aeasi.contribution(values | {age: 7.9}, "footLeft") == 5.4  # x 0.3
    assert aeasi.contribution(values | {age: 8}, "footLeft") == 7.2  # x 0.4
    assert aeasi.contribution(values | {age: 5}, "trunkBack") == aeasi.contribution(values | {age: 30}, "trunkBack")


def test_aeasi_global_needs_one_age_for_the_patient() -> None:
    values = {"redness": 1, "thickness": 1, "scratching": 1, "lichenification": 1, "surface": 10}
    with pytest.raises(ValueError, match="patientAge"):
        SYSTEMS["aeasi"].global_score([("headFront", values | {"patientAge": 5}),
                                       ("legLeft", values | {"patientAge": 6})])


def test_pasi_one_zone_is_weighted_by_the_site_region() -> None:
    pasi = SYSTEMS["pasi"]
    values = {"surface": 5, "erythema": 1, "induration": 2, "desquamation": 3}  # (1 + 2 + 3) x 5 = 30
    assert pasi.local_score(values) == 30
    assert pasi.local_score(values, "armLeft") == 6.0  # x 0.2
    assert pasi.local_score(values, "legRight") == 12.0  # x 0.4
    assert pasi.contribution(values, "armLeft") == 6.0


def test_ascorad_reads_the_extent_from_the_zone_share() -> None:
    """A = surface x the zone's share of the body: 60 % of the upper limbs (20 %) is 12 % of the body."""
    values = {"surface": 60.0, "crusting": 2, "dryness": 1, "erythema": 2, "excoriation": 0, "lichenification": 0,
              "swelling": 2, "pruritus": 5, "sleeplessness": 7}
    assert SYSTEMS["ascorad"].local_score(values, "armLeft") == 38.9  # 12/5 + 3.5 x 7 + 12
    assert SYSTEMS["ascorad"].local_score(values) == 48.5  # without a site, surface is the whole-body extent


def test_avasi_hand_units_are_optional_locally_and_needed_globally() -> None:
    avasi = SYSTEMS["avasi"]
    assert avasi.item("handUnits").optional and avasi.check({"depigmentation": 52}) == []
    assert avasi.local_score({"depigmentation": 52}, "armLeft") == 50  # the nearest VASI level
    assert avasi.contribution({"depigmentation": 52}, "armLeft") is None
    assert avasi.contribution({"depigmentation": 52, "handUnits": 2}, "armLeft") == 1.0
    assert [p.item for p in avasi.check({"depigmentation": 52}, whole_body=True)] == ["handUnits"]
    with pytest.raises(InvalidItems, match="handUnits"):
        avasi.global_score([("armLeft", {"depigmentation": 52})])
    assert avasi.interpret(50).category == "Moderate"  # a site's level
    assert avasi.interpret(2.5, whole_body=True).category == "Mild"  # whole-body VASI under 3 %


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
        SYSTEMS["apasi"].local_score({"erythema": 1, "induration": 1, "desquamation": 1, "surface": 5}, "wing")


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
        assert entry["text"] and set(entry) >= {"description", "sign", "optional", "labels", "extras", "reportedAs"}
    assert len(payload["bands"]) == len(system.bands)
    assert payload["scoreRange"] == {"minimum": system.score_range[0], "maximum": system.score_range[1]}
    assert payload["reference"] and payload["pathologies"] == list(system.pathologies)
    expected_sites = sorted(system.allowed_sites) if system.allowed_sites is not None else None
    assert payload["allowedBodySites"] == expected_sites


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_pathologies_exist_in_the_condition_catalogue(system: ScoringSystem) -> None:
    codes = {entry["code"] for entry in json.loads(DEFAULT_CATALOGUE_PATH.read_text(encoding="utf-8"))}
    assert set(system.pathologies) <= codes
    assert bool(system.pathologies) == (system.code not in ANY_CONDITION)
    assert system.scores_any_condition == (system.code in ANY_CONDITION)


@pytest.mark.parametrize(
    ("condition", "included", "excluded"),
    [
        ("EA90", {"apasi", "pasi", "pga", "pure4", "dlqi", "nsil"}, {"agppga", "easi"}),
        ("EA90.40", {"agppga", "apasi", "pasi"}, {"aeasi"}),
        ("ea80.2", {"aeasi", "easi", "ascorad", "scorad"}, {"pasi"}),
        ("EA89", {"aeasi", "easi", "ascorad", "scorad"}, {"pasi"}),
        ("EB00.01", {"auas", "uas", "uas7", "uct"}, set()),
        ("EB05", {"auas", "uas", "uct"}, {"uas7"}),
        ("EB00.1", {"uas", "uct"}, {"uas7"}),
        ("ED92.0", {"aihs4", "ihs4"}, set()),
        ("ED80.Z", {"aladin", "gags"}, set()),
        ("ED70.2", {"asalt", "salt"}, {"avasi"}),
        ("ED70", {"asalt", "salt"}, {"avasi"}),
        ("ED63.0", {"avasi"}, set()),
        ("EH90.Z", {"awosi", "resvech", "nsil"}, {"apasi"}),
        ("EH90.3", {"awosi", "resvech"}, set()),
        ("EF60", {"awosi", "resvech"}, set()),
        ("2C30.1", {"sevenPc"}, {"dlqi", "awosi"}),
        ("2F20.Z", {"sevenPc"}, set()),
    ],
)
def test_systems_for_condition_cover_child_codes(condition: str, included: set[str], excluded: set[str]) -> None:
    found = {s.code for s in systems_for_condition(condition)}
    assert included <= found and not excluded & found


def test_applies_to_follows_the_icd11_hierarchy() -> None:
    assert SYSTEMS["uas7"].applies_to("EB00.01") and SYSTEMS["uas7"].applies_to("eb00.0")
    assert not SYSTEMS["uas7"].applies_to("EB00")  # the parent is wider than spontaneous urticaria
    assert SYSTEMS["agppga"].applies_to("EA90.40") and not SYSTEMS["agppga"].applies_to("EA90.4")


def test_only_any_condition_systems_for_unrelated_conditions() -> None:
    for code in ("1E80", "EA9", "Non-specific finding"):
        assert [s.code for s in systems_for_condition(code)] == list(ANY_CONDITION)
    assert SYSTEMS["nsil"].applies_to("anything") and SYSTEMS["nsil"].questionnaire()["anyCondition"] is True
    assert SYSTEMS["apasi"].questionnaire()["anyCondition"] is False


# --- presentation metadata ---------------------------------------------------------------------


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_every_clinician_item_reads_every_value(system: ScoringSystem) -> None:
    for item in system.clinician_items():
        top = 6 if item.reported == "areaScore" else item.maximum
        for value in {item.minimum, top, math.ceil((item.minimum + top) / 2)}:
            reading = item.interpretation(item.report_value(value) if item.reported == "areaScore" else value)
            assert isinstance(reading, str) and reading, (item.code, value)


@pytest.mark.parametrize(
    ("code", "item", "value", "reading"),
    [("auas", "wheals", 2, "Moderate (20-50)"),
     ("auas", "pruritus", 3, "Severe (interferes with normal daily activity or sleep)"),
     ("uas", "wheals", 0, "None"), ("dlqi", "question1", 0, "Not at all"), ("dlqi", "question10", 3, "Very much"),
     ("pure4", "question1", 1, "Yes"), ("sevenPc", "irregularBorder", 0, "No"), ("ihs4", "nodule", 5, "5 nodules"),
     ("ihs4", "drainingTunnel", 1, "1 draining tunnel"), ("gags", "nose", 3, "Pustules"),
     ("uct", "overallUnderControl", 4, "Very well"), ("scorad", "pruritus", 6.5, "Moderate"),
     ("scorad", "sleeplessness", 0, "None"), ("scorad", "surface", 25, "25 %"), ("pasi", "surface", 4, "50-69 %"),
     ("aeasi", "patientAge", 40, "40 years"), ("aladin", "acne", 33, "Severe"), ("easi", "headErythema", 1.5,
                                                                                  "Mild-moderate"),
     ("scovid", "pain", 9, "Very severe"), ("resvech", "odor", 2, "2 of 4"), ("resvech", "purulentExudate", 1, "Yes")],
)
def test_item_interpretations(code: str, item: str, value: float, reading: str) -> None:
    assert SYSTEMS[code].item(item).interpretation(value) == reading


def test_ai_items_without_a_reading_have_none() -> None:
    assert SYSTEMS["agppga"].item("erythema").interpretation(3) is None
    assert SYSTEMS["awosi"].item("bordersDamaged").interpretation(1) is None
    assert SYSTEMS["nsil"].item("inflammations").interpretation(0) is None


def test_zone_surface_is_reported_as_the_area_score() -> None:
    for code in ("apasi", "aeasi"):
        surface = SYSTEMS[code].item("surface")
        assert surface.text == "Surface area score" and surface.kind == "percent" and surface.maximum == 100
        assert [surface.report_value(p) for p in (0, 4, 60, 100)] == [0, 1, 4, 6]
        assert surface.interpretation(4) == "50-69 %"
    ascorad = SYSTEMS["ascorad"].item("surface")
    assert ascorad.report_value(60) == 60 and ascorad.extras == ("surfaceAreaOverBsa",)
    assert ascorad.text == "Percentage of the body zone's surface area affected by the lesion."


def test_item_extras() -> None:
    extras = {(s.code, i.code): i.extras for s in ALL for i in s.items if i.extras}
    booleans = {("awosi", i.code): ("presenceProbability",) for i in SYSTEMS["awosi"].ai_items() if i.kind == "boolean"}
    assert len(booleans) == 23
    assert extras == {("auas", "wheals"): ("whealsCount",), ("aladin", "acne"): ("acneDensity",),
                      ("nsil", "inflammations"): ("inflammatoryLesionCount",),
                      ("ascorad", "surface"): ("surfaceAreaOverBsa",), **booleans}
    assert EXTRA_TEXTS["presenceProbability"] == "Probability of the item being present in the wound as assessed by AI."
    with pytest.raises(ValueError, match="additionalData"):
        Item("a", "a", "count", 0, 9, "clinician", extras=("bogus",))


@pytest.mark.parametrize("system", ALL, ids=ids)
def test_media_and_item_reporting(system: ScoringSystem) -> None:
    assert system.media == MEDIA.get(system.code, "none")
    assert system.reports_items == (system.code not in ("asalt", "avasi"))
    if system.media == "annotation":
        assert system.annotation_title.startswith(f"{ANNOTATION_TITLE} ")
    else:
        assert system.annotation_title is None
    payload = system.questionnaire()
    assert (payload["media"], payload["reportsItems"], payload["annotationTitle"]) == (
        system.media, system.reports_items, system.annotation_title)


def test_annotation_titles() -> None:
    titles = {c: SYSTEMS[c].annotation_title for c in ("aihs4", "aladin", "auas", "nsil")}
    assert titles == {c: f"Annotated image with bounding boxes highlighting {x}" for c, x in
                      (("aihs4", "HS inflammatory lesions"), ("aladin", "acne pimples"),
                       ("auas", "urticaria wheals"), ("nsil", "inflammatory lesions"))}


def test_awosi_category_is_the_stage_of_the_deepest_tissue() -> None:
    awosi = SYSTEMS["awosi"]
    none = {i.code: 0 for i in awosi.items}
    cases = [({}, "Healed", 0), ({"erythema": 1}, "Stage 1", 1), ({"affectedTissueDermisEpidermis": 1}, "Stage 2", 1),
             ({"tissueInWoundBedSlough": 1}, "Unstageable", 2),
             ({"affectedTissueDermisEpidermis": 1, "affectedTissueSubcutaneous": 1}, "Stage 3", 2),
             ({"affectedTissueSubcutaneous": 1, "affectedTissueMuscle": 1, "tissueInWoundBedSlough": 1}, "Stage 4", 3),
             ({"affectedTissueBoneAndOrAdjacent": 1}, "Stage 4", 3)]
    for found, category, intensity in cases:
        values = none | found
        band = awosi.interpret(awosi.local_score(values, "headLeft"), values)
        assert (band.category, band.intensity) == (category, intensity), found
    assert awosi.interpret(0).category == "None"  # without the items: the severity-sum bands
    healing = none | {"bordersDelimited": 1, "exudationSerous": 1, "tissueInWoundBedGranulation": 1}
    assert awosi.local_score(healing, "headLeft") == 0  # signs of healing score nothing


def test_docs_describe_every_system() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for code in SYSTEMS:
        assert f"`{code}`" in text, code
    for site in BODY_SITES:
        assert f"`{site}`" in text, site

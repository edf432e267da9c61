"""Tests for the body-site catalogue (pipeline.severity.body_sites)."""

from __future__ import annotations

import json
import math

import pytest

from pipeline.severity.body_sites import (
    BODY_SITES,
    HAIR_BEARING_SITES,
    LANGUAGES,
    REGION_WEIGHTS_EASI,
    REGION_WEIGHTS_EASI_CHILD,
    REGION_WEIGHTS_PASI,
    REGIONS,
    SALT_QUADRANT_WEIGHTS,
    body_site,
    describe,
    easi_region_weights,
)

SPEC_CODES = [
    "headFront", "headBack", "headTop", "headLeft", "headRight", "scalp", "earLeft", "earRight", "perioral",
    "tongue", "trunkFront", "trunkBack", "genital", "nails", "armLeft", "armRight", "upperArmLeft",
    "upperArmRight", "lowerArmLeft", "lowerArmRight", "elbowLeft", "elbowRight", "handLeft", "handRight",
    "legLeft", "legRight", "upperLegLeft", "upperLegRight", "lowerLegLeft", "lowerLegRight", "kneeLeft",
    "kneeRight", "footLeft", "footRight",
]


def test_codes_are_the_34_of_the_spec_in_order() -> None:
    assert list(BODY_SITES) == SPEC_CODES
    assert len(BODY_SITES) == 34


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("headFront", "head"), ("scalp", "head"), ("earLeft", "head"), ("perioral", "head"), ("tongue", "head"),
        ("trunkFront", "trunk"), ("trunkBack", "trunk"), ("genital", "trunk"),
        ("nails", "upperLimbs"), ("elbowRight", "upperLimbs"), ("handLeft", "upperLimbs"),
        ("lowerArmRight", "upperLimbs"), ("kneeLeft", "lowerLimbs"), ("footRight", "lowerLimbs"),
        ("upperLegLeft", "lowerLimbs"),
    ],
)
def test_regions(code: str, region: str) -> None:
    assert BODY_SITES[code].region == region


def test_every_region_has_sites_and_sides_share_a_region() -> None:
    assert {s.region for s in BODY_SITES.values()} == set(REGIONS)
    for code, site in BODY_SITES.items():
        if code.endswith("Left"):
            assert BODY_SITES[code[: -len("Left")] + "Right"].region == site.region


def test_hair_bearing_sites_and_salt_quadrants() -> None:
    assert HAIR_BEARING_SITES == {"scalp", "headTop", "headBack", "headLeft", "headRight"}
    quadrants = {c: s.salt_quadrant for c, s in BODY_SITES.items() if s.salt_quadrant}
    assert quadrants == {"headTop": "vertex", "scalp": "vertex", "headLeft": "left", "headRight": "right",
                         "headBack": "back"}
    assert all(BODY_SITES[c].hair_bearing for c in quadrants)
    assert not BODY_SITES["headFront"].hair_bearing


def test_names_in_every_language_and_distinct() -> None:
    for site in BODY_SITES.values():
        assert tuple(site.names) == LANGUAGES
        assert all(name.strip() for name in site.names.values())
    for language in LANGUAGES:
        names = [s.names[language] for s in BODY_SITES.values()]
        assert len(set(names)) == len(names), language


def test_region_weights() -> None:
    for weights in (REGION_WEIGHTS_PASI, REGION_WEIGHTS_EASI, REGION_WEIGHTS_EASI_CHILD):
        assert set(weights) == set(REGIONS)
        assert math.isclose(sum(weights.values()), 1.0)
    assert dict(REGION_WEIGHTS_PASI) == {"head": 0.1, "upperLimbs": 0.2, "trunk": 0.3, "lowerLimbs": 0.4}
    assert REGION_WEIGHTS_EASI_CHILD["head"] == 0.2 and REGION_WEIGHTS_EASI_CHILD["lowerLimbs"] == 0.3
    assert math.isclose(sum(SALT_QUADRANT_WEIGHTS.values()), 100.0)


@pytest.mark.parametrize(("age", "head"), [(0, 0.2), (7, 0.2), (7.9, 0.2), (8, 0.1), (45, 0.1)])
def test_easi_weights_change_at_8_years(age: float, head: float) -> None:
    assert easi_region_weights(age)["head"] == head


def test_describe_is_the_body_sites_payload() -> None:
    payload = describe()
    assert [entry["code"] for entry in payload] == SPEC_CODES
    for entry in payload:
        assert set(entry) == {"code", "name", "region"}
        assert set(entry["name"]) == set(LANGUAGES)
        assert entry["region"] == BODY_SITES[entry["code"]].region
    assert json.loads(json.dumps(payload)) == payload
    assert payload[SPEC_CODES.index("footLeft")]["name"]["de_DE"] == "Linker Fuß"


def test_unknown_site_names_the_code() -> None:
    with pytest.raises(KeyError, match="elbow"):
        body_site("elbow")

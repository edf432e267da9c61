"""Score formulas shared by the scoring systems in ``pipeline.severity.systems``.

A formula turns validated item values into a score. It knows three things:

* ``local``: the score of one body site or one questionnaire (``site`` is given when the
  score is read for a known body site; most formulas ignore it);
* ``contribution``: that site's share of the whole-body score, or None when the values
  at hand cannot give one (AVASI without hand units);
* ``contributions``: the shares of several sites assessed together, which sum to the
  whole-body score. Sites that fall into the same PASI/EASI region or SALT quadrant
  describe the same part of the body, so they are pooled before weighting instead of
  being counted twice.

Values are plain floats; validation and rounding are the scoring system's job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from pipeline.severity.body_sites import (
    REGIONS,
    SALT_QUADRANT_WEIGHTS,
    Region,
    SaltQuadrant,
    body_site,
    body_surface_share,
)

Values = Mapping[str, float]
Sites = Sequence[tuple[str, Values]]
RegionWeights = Callable[[float | None], Mapping[Region, float]]

# PASI/EASI area score: 0 = none, 1 = under 10 %, 2 = 10-29 %, ... 6 = 90-100 %.
AREA_THRESHOLDS: tuple[float, ...] = (10.0, 30.0, 50.0, 70.0, 90.0)
# VASI degree of depigmentation (Hamzavi et al. 2004), in percent.
VASI_LEVELS: tuple[float, ...] = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 100.0)


def step(value: float, thresholds: Sequence[float], *, above_zero: bool = False) -> int:
    """Grade = number of thresholds <= value, plus one for any positive value if ``above_zero``.

    ``above_zero`` expresses scales whose first grade means "present but below the first
    cut-off" (area score 1 = 1-9 %, GPPGA 1 = mean above 0 and below 1.5).
    """
    return int(above_zero and value > 0) + sum(1 for t in thresholds if t <= value)


def area_score(percent: float) -> int:
    """PASI/EASI area score 0-6 of an involvement percentage."""
    return step(percent, AREA_THRESHOLDS, above_zero=True)


def vasi_level(percent: float) -> float:
    """The VASI depigmentation level nearest to a measured percentage (ties go down)."""
    return min(VASI_LEVELS, key=lambda level: abs(level - percent))


def round_half_up(value: float, decimals: int) -> float:
    """Round as clinicians do (2.25 -> 2.3), on the shortest decimal form of ``value``.

    Integers come back as ``int`` so that whole-number scores serialise as ``8``, not ``8.0``.
    """
    quantum = Decimal(1).scaleb(-decimals)
    rounded = Decimal(repr(float(value))).quantize(quantum, rounding=ROUND_HALF_UP)
    return int(rounded) if decimals == 0 else float(rounded)


class Formula(ABC):
    """A score formula; by default a site's contribution is its local score and shares add up."""

    supports_global: bool = False
    # Items that are optional for a local score but needed by the whole-body combination.
    global_inputs: tuple[str, ...] = ()

    @abstractmethod
    def local(self, values: Values, site: str | None = None) -> float:
        """The score of one site or one questionnaire."""

    def contribution(self, values: Values, site: str | None) -> float | None:
        return self.local(values, site)

    def contributions(self, sites: Sites) -> list[float]:
        shares = [self.contribution(values, site) for site, values in sites]
        if any(share is None for share in shares):
            raise ValueError(f"the whole-body score needs {', '.join(self.global_inputs)} at every site")
        return [float(share) for share in shares]  # type: ignore[arg-type]

    def category(self, values: Values) -> tuple[str, int] | None:
        """(category, intensity) read from the item values rather than the score; None: use the bands."""
        return None


@dataclass(frozen=True)
class WeightedSum(Formula):
    """``scale * sum(weight * item)``, optionally graded by ``step`` (GPPGA's mean -> 0-4)."""

    weights: Mapping[str, float]
    scale: float = 1.0
    grades: tuple[float, ...] | None = None
    supports_global: bool = False

    def local(self, values: Values, site: str | None = None) -> float:
        total = self.scale * sum(w * float(values[code]) for code, w in self.weights.items())
        return float(step(total, self.grades, above_zero=True)) if self.grades else total


@dataclass(frozen=True)
class RoundedMean(Formula):
    """The mean of the items rounded half up to a whole grade (the averaged static PGA)."""

    items: tuple[str, ...]

    def local(self, values: Values, site: str | None = None) -> float:
        mean = sum(float(values[code]) for code in self.items) / len(self.items)
        return float(round_half_up(mean, 0))


def _pooled(entries: Sequence[tuple[float, float]], weight: float) -> list[float]:
    """Contributions of several (sign sum, area %) assessments of one region.

    The region's involved area is the sum of the sites' areas (capped at 100 %) and its
    severity is the area-weighted mean of their sign sums, as PASI/EASI grade the
    average severity over the involved skin. Each site receives the part of
    ``weight * severity * area score`` that its own involved area carries, so the parts
    add up to the region score exactly; a site with no involved area contributes 0.
    """
    total_area = sum(area for _, area in entries)
    if total_area <= 0:
        return [0.0 for _ in entries]
    scale = weight * area_score(min(total_area, 100.0)) / total_area
    return [scale * area * signs for signs, area in entries]


@dataclass(frozen=True)
class RegionalSites(Formula):
    """Per-site PASI/EASI: (sum of signs) x area score, weighted by the site's region."""

    signs: tuple[str, ...]
    weights: RegionWeights
    area: str = "area"
    age: str | None = None
    supports_global: bool = True

    def _signs(self, values: Values) -> float:
        return sum(float(values[code]) for code in self.signs)

    def _weights(self, values: Values) -> Mapping[Region, float]:
        return self.weights(float(values[self.age]) if self.age else None)

    def local(self, values: Values, site: str | None = None) -> float:
        return self._signs(values) * area_score(float(values[self.area]))

    def contribution(self, values: Values, site: str | None) -> float:
        return self.contributions([(_required(site), values)])[0]

    def contributions(self, sites: Sites) -> list[float]:
        by_region: dict[Region, list[int]] = defaultdict(list)
        for index, (site, _) in enumerate(sites):
            by_region[body_site(site).region].append(index)
        result = [0.0] * len(sites)
        for region, indices in by_region.items():
            entries = [(self._signs(sites[i][1]), float(sites[i][1][self.area])) for i in indices]
            weight = self._weights(sites[indices[0]][1])[region]
            for i, share in zip(indices, _pooled(entries, weight)):
                result[i] = share
        return result


@dataclass(frozen=True)
class RegionalForm(Formula):
    """Whole-body PASI/EASI form: items ``<region><Sign>`` and ``<region>Area`` per region."""

    signs: tuple[str, ...]
    weights: RegionWeights
    age: str | None = None

    def local(self, values: Values, site: str | None = None) -> float:
        weights = self.weights(float(values[self.age]) if self.age else None)
        return sum(self._region(values, region, weights[region]) for region in REGIONS)

    def _region(self, values: Values, region: Region, weight: float) -> float:
        signs = sum(float(values[region_item(region, sign)]) for sign in self.signs)
        return _pooled([(signs, float(values[region_item(region, "area")]))], weight)[0]


@dataclass(frozen=True)
class SaltQuadrants(Formula):
    """Per-site SALT: % hair loss of the site's quadrant, weighted by the quadrant's share.

    Several images of one quadrant each estimate that quadrant's hair loss, so they are
    averaged rather than added.
    """

    item: str = "hairLoss"
    supports_global: bool = True

    def local(self, values: Values, site: str | None = None) -> float:
        return float(values[self.item])

    def contributions(self, sites: Sites) -> list[float]:
        quadrants = [_quadrant(site) for site, _ in sites]
        counts = Counter(quadrants)
        return [
            SALT_QUADRANT_WEIGHTS[q] * float(values[self.item]) / 100.0 / counts[q]
            for q, (_, values) in zip(quadrants, sites)
        ]

    def contribution(self, values: Values, site: str | None) -> float:
        return self.contributions([(_required(site), values)])[0]


@dataclass(frozen=True)
class VasiSites(Formula):
    """Per-site VASI (Hamzavi et al. 2004).

    The local score is the site's degree of depigmentation, rounded to the nearest VASI
    level (0-100 %): an image shows how depigmented the involved skin is, not how many
    hand units it covers. With the hand units given, the site's VASI (hand units x level)
    is its contribution to the whole-body VASI, and sites add up.
    """

    hand_units: str = "handUnits"
    depigmentation: str = "depigmentation"
    supports_global: bool = True

    @property
    def global_inputs(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.hand_units,)

    def local(self, values: Values, site: str | None = None) -> float:
        return vasi_level(float(values[self.depigmentation]))

    def contribution(self, values: Values, site: str | None) -> float | None:
        units = values.get(self.hand_units)
        if units is None:
            return None
        return float(units) * vasi_level(float(values[self.depigmentation])) / 100.0


@dataclass(frozen=True)
class ZonePasi(Formula):
    """One-zone PASI: (erythema + induration + desquamation) x area score (0-6) of the zone.

    With a body site, the score is weighted by the site's PASI region (head 0.1, upper
    limbs 0.2, trunk 0.3, lower limbs 0.4): the zone's share of the whole-body PASI.
    Without one it is the unweighted zone score (0-72).
    """

    signs: tuple[str, ...] = ("erythema", "induration", "desquamation")
    area: str = "surface"

    def local(self, values: Values, site: str | None = None) -> float:
        zone = sum(float(values[code]) for code in self.signs) * float(values[self.area])
        return zone * body_surface_share(site) if site is not None else zone


@dataclass(frozen=True)
class ZoneScorad(Formula):
    """SCORAD A/5 + 7B/2 + C with A read from the affected share of one body zone.

    ``surface`` is the percentage of the zone (the site's PASI/EASI region) with eczema;
    A is that area as a share of the whole body (surface x the region's share of the body
    surface: head 10 %, upper limbs 20 %, trunk 30 %, lower limbs 40 %). Without a body
    site ``surface`` is taken as the whole-body extent.
    """

    intensity: tuple[str, ...]
    symptoms: tuple[str, ...] = ("pruritus", "sleeplessness")
    area: str = "surface"

    def extent(self, values: Values, site: str | None) -> float:
        surface = float(values[self.area])
        return surface * body_surface_share(site) if site is not None else surface

    def local(self, values: Values, site: str | None = None) -> float:
        b = sum(float(values[code]) for code in self.intensity)
        c = sum(float(values[code]) for code in self.symptoms)
        return self.extent(values, site) / 5.0 + 3.5 * b + c


# Pressure-injury stage of the deepest affected tissue (NPIAP 2016, Edsberg et al.):
# (items that show it, category, intensity), deepest first.
WOUND_STAGES: tuple[tuple[tuple[str, ...], str, int], ...] = (
    (("affectedTissueBoneAndOrAdjacent", "affectedTissueMuscle"), "Stage 4", 3),
    (("affectedTissueSubcutaneous",), "Stage 3", 2),
    (("affectedTissueDermisEpidermis",), "Stage 2", 1),
    (("tissueInWoundBedNecrotic", "tissueInWoundBedSlough"), "Unstageable", 2),
)
WOUND_STAGE_1 = ("Stage 1", 1)  # intact skin with erythema
WOUND_HEALED = ("Healed", 0)  # intact or scarred skin without erythema


@dataclass(frozen=True)
class WoundScore(Formula):
    """AWOSI: wound severity = erythema grade + the number of adverse signs present.

    The category is not read from the score but from the deepest affected tissue, as
    the NPIAP 2016 pressure-injury stage (see ``WOUND_STAGES``).
    """

    erythema: str
    adverse: tuple[str, ...]

    def local(self, values: Values, site: str | None = None) -> float:
        return float(values[self.erythema]) + sum(float(values[code]) >= 0.5 for code in self.adverse)

    def category(self, values: Values) -> tuple[str, int] | None:
        for codes, category, intensity in WOUND_STAGES:
            if any(float(values.get(code, 0)) >= 0.5 for code in codes):
                return category, intensity
        return WOUND_STAGE_1 if float(values.get(self.erythema, 0)) > 0 else WOUND_HEALED


def region_item(region: str, sign: str) -> str:
    """Item code of a sign in one region of a whole-body form: ``("head", "area")`` -> ``headArea``."""
    return region + sign[0].upper() + sign[1:]


def _required(site: str | None) -> str:
    if site is None:
        raise ValueError("this scoring system needs the body site to weight a site's score")
    return site


def _quadrant(site: str) -> SaltQuadrant:
    quadrant = body_site(site).salt_quadrant
    if quadrant is None:
        raise ValueError(f"{site!r} bears no scalp hair, so it has no SALT quadrant")
    return quadrant

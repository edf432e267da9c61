"""Catalogue of the severity scoring systems: items, formulas, bands and references.

Automatic systems (``a*``, ``nsil``) score one imaged body site: the items the image can
give come from the AI (``source="ai"``, each fed by one image *sign*), the rest are
clinical inputs (``source="clinician"``). Manual systems take every item from the
clinician. Formulas live in ``pipeline.severity.formulas``; ``docs/severity.md`` explains
every system and cites its sources.

Item codes, ranges and modes follow the integration contract of the reference client
(``surface``, ``question1`` ...). Besides the scoring data every item and system carries
presentation metadata the report reads: ``Item.interpretation`` (a human reading of a
value), ``Item.extras`` (additionalData keys, texts in ``EXTRA_TEXTS``),
``Item.report_value`` (the value as reported), ``ScoringSystem.media``,
``reports_items`` and ``annotation_title``.

Scores are rounded half up to the system's ``decimals`` (PASI/EASI/SCORAD/SALT to one
decimal as they are reported in the literature, VASI to two, the rest are integers), and
bands apply to the rounded score. Band bounds are therefore written at that resolution:
"EASI 1.1-7.0 is mild" is the band [1.1, 7.1).

Pure standard library: the API process imports this module without torch or OpenCV.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Literal

from pipeline.severity.body_sites import (
    BODY_SITES,
    HAIR_BEARING_SITES,
    REGION_WEIGHTS_PASI,
    REGIONS,
    SALT_QUADRANT_WEIGHTS,
    Region,
    easi_region_weights,
)
from pipeline.severity.formulas import (
    Formula,
    RegionalForm,
    RegionalSites,
    RoundedMean,
    SaltQuadrants,
    VasiSites,
    WeightedSum,
    WoundScore,
    ZonePasi,
    ZoneScorad,
    area_score,
    region_item,
    round_half_up,
    step,
)

ItemSource = Literal["ai", "clinician"]
ItemKind = Literal["ordinal", "count", "percent", "number", "boolean"]
SignKind = Literal["ordinal", "count", "percent", "presence"]
ProblemKind = Literal["missing", "out_of_range", "not_integer", "not_a_number", "unknown_item"]
MediaKind = Literal["lesion", "hair", "depigmentation", "annotation", "wound", "none"]
Reported = Literal["value", "areaScore"]

# AWOSI's yes/no wound items, each fed by a presence sign of the same name.
WOUND_BOOLEANS: tuple[tuple[str, str], ...] = (
    ("bordersDamaged", "Borders: Damaged"),
    ("bordersDelimited", "Borders: Delimited"),
    ("bordersDiffused", "Borders: Diffused"),
    ("bordersThickened", "Borders: Thickened"),
    ("bordersIndistinguishable", "Borders: Indistinguishable"),
    ("perilesionalErythema", "Perilesional erythema"),
    ("perilesionalMaceration", "Perilesional maceration"),
    ("biofilmCompatibleTissue", "Biofilm-compatible tissue"),
    ("affectedTissueBoneAndOrAdjacent", "Affected tissues: Bone and/or adjacent tissues"),
    ("affectedTissueDermisEpidermis", "Affected tissues: Dermis-epidermis"),
    ("affectedTissueMuscle", "Affected tissues: Muscle"),
    ("affectedTissueSubcutaneous", "Affected tissues: Subcutaneous tissue"),
    ("affectedTissueHealedSkin", "Affected tissues: Intact scarred skin"),
    ("exudationFibrinous", "Type of exudation: Fibrinous"),
    ("exudationPurulent", "Type of exudation: Purulent"),
    ("exudationBloody", "Type of exudation: Bloody"),
    ("exudationSerous", "Type of exudation: Serous"),
    ("exudationGreenish", "Type of exudation: Greenish"),
    ("tissueInWoundBedScarred", "Type of tissue in the wound bed: Closed/Scarred"),
    ("tissueInWoundBedSlough", "Type of tissue in the wound bed: Slough"),
    ("tissueInWoundBedNecrotic", "Type of tissue in the wound bed: Necrotic"),
    ("tissueInWoundBedGranulation", "Type of tissue in the wound bed: Granulation"),
    ("tissueInWoundBedEpithelia", "Type of tissue in the wound bed: Epithelia"),
)

# Image signs the estimators produce: ordinal signs are a 0..1 severity level, count
# signs a number of lesions, percent signs a 0-100 fraction of the imaged area, presence
# signs a 0-100 probability that a finding is present (AWOSI's yes/no items).
SIGN_KINDS: Mapping[str, SignKind] = MappingProxyType(
    {
        **dict.fromkeys(
            ("erythema", "induration", "desquamation", "excoriation", "lichenification",
             "oozing", "dryness", "oedema", "pustulation"),
            "ordinal",
        ),
        **dict.fromkeys(("wheals", "nodules", "abscesses", "tunnels", "acneLesions", "pustules",
                         "inflammatoryLesions"), "count"),
        **dict.fromkeys(("lesionArea", "hairLoss", "depigmentation"), "percent"),
        **dict.fromkeys((code for code, _ in WOUND_BOOLEANS), "presence"),
    }
)
PRESENCE_THRESHOLD = 50.0  # a presence probability from this on reads as "present" (1)
# The additionalData entries a report may attach to an item besides aiConfidence.
EXTRA_TEXTS: Mapping[str, str] = MappingProxyType(
    {
        "whealsCount": "Number of hives/wheals",
        "acneDensity": "Acne density score",
        "inflammatoryLesionCount": "Number of inflammatory lesions",
        "presenceProbability": "Probability of the item being present in the wound as assessed by AI.",
        "surfaceAreaOverBsa": "Affected surface area as a percentage of the whole body",
    }
)
ANNOTATION_TITLE = "Annotated image with bounding boxes highlighting"
ALL_SOURCES: tuple[ItemSource, ...] = ("ai", "clinician")
MAX_COUNT = 999.0  # lesion counts above this are not plausible clinical input
ABOVE_ZERO = 1e-9  # label bound: "any value above 0"


@dataclass(frozen=True)
class Item:
    """One input of a scoring system (a sign grade, a count, a percentage, an answer)."""

    code: str
    text: str
    kind: ItemKind
    minimum: float
    maximum: float
    source: ItemSource
    integer: bool = True
    sign: str | None = None
    grade_thresholds: tuple[float, ...] | None = None
    description: str = ""
    per_patient: bool = False  # one value per patient (age, symptoms): equal on every site
    half_points: bool = False  # EASI grades: 0, 1, 1.5, 2, 2.5, 3 (no 0.5: a present sign is at least 1)
    # Presentation: labels[i] reads the value i (or, with label_bounds, the values from
    # label_bounds[i - 1] on); unit names counts and numbers ("lesions", "years").
    labels: tuple[str, ...] | None = None
    label_bounds: tuple[float, ...] | None = None
    unit: str = ""
    extras: tuple[str, ...] = ()  # additionalData keys besides aiConfidence, see EXTRA_TEXTS
    optional: bool = False  # may be left out of a local score (AVASI hand units)
    reported: Reported = "value"  # "areaScore": a percentage reported as the PASI/EASI area score 0-6

    def __post_init__(self) -> None:
        if not self.minimum < self.maximum:
            raise ValueError(f"{self.code}: empty range")
        if (self.source == "ai") != (self.sign is not None):
            raise ValueError(f"{self.code}: AI items and only AI items name an image sign")
        if self.sign is not None:
            sign_kind = SIGN_KINDS[self.sign]
            if self.kind == "ordinal" and sign_kind not in ("ordinal",) and self.grade_thresholds is None:
                raise ValueError(f"{self.code}: an ordinal item fed by a {sign_kind} sign needs grade_thresholds")
            if (sign_kind == "presence") != (self.kind == "boolean"):
                raise ValueError(f"{self.code}: yes/no AI items, and only they, are fed by presence signs")
        unknown = set(self.extras) - set(EXTRA_TEXTS)
        if unknown:
            raise ValueError(f"{self.code}: unknown additionalData keys {sorted(unknown)}")
        if self.labels is not None:
            if self.label_bounds is not None:
                wanted = len(self.label_bounds) + 1
            elif self.reported == "areaScore":
                wanted = 7  # the area score 0-6
            else:
                wanted = int(self.maximum) - int(self.minimum) + 1
            if len(self.labels) != wanted or not all(self.labels):
                raise ValueError(f"{self.code}: {wanted} non-empty labels expected")

    def from_sign(self, measure: float) -> float:
        """The item value for an estimator's sign measure.

        Ordinal signs (0..1) are scaled to the item's range; count and percent signs are
        graded by ``grade_thresholds`` when the item is an ordinal grade, else taken as
        they are. Values are clamped to the range and rounded for integer items.
        """
        if self.sign is None:
            raise ValueError(f"{self.code} is a clinical input, not an image sign")
        if self.grade_thresholds is not None:
            return float(step(measure, self.grade_thresholds))
        if SIGN_KINDS[self.sign] == "presence":
            return 1.0 if measure >= PRESENCE_THRESHOLD else 0.0
        value = measure
        if SIGN_KINDS[self.sign] == "ordinal":
            value = self.minimum + measure * (self.maximum - self.minimum)
        value = min(max(value, self.minimum), self.maximum)
        return float(round_half_up(value, 0)) if self.integer else value

    def report_value(self, value: float) -> float:
        """The value as the report shows it: a zone percentage becomes its area score 0-6."""
        if self.reported == "areaScore":
            return float(area_score(float(value)))
        return float(value)

    def interpretation(self, value: float) -> str | None:
        """A human reading of a value as reported (``report_value``), or None where none is defined.

        Every clinician item has one: its labels, else "No"/"Yes", "5 lesions", "60 %" or
        "2 of 4". AI items have one only where labels are defined.
        """
        if self.labels is not None:
            if self.label_bounds is not None:
                return self.labels[step(value, self.label_bounds)]
            index = int(math.floor(value + 1e-9)) - int(self.minimum)
            index = min(max(index, 0), len(self.labels) - 1)
            label = self.labels[index]
            if self.half_points and value != int(value) and index + 1 < len(self.labels):  # 1.5: "Mild-moderate"
                label = f"{label}-{self.labels[index + 1].lower()}"
            return label
        if self.source == "ai":
            return None
        shown = f"{float(value):g}"
        if self.kind == "boolean":
            return "Yes" if value >= 0.5 else "No"
        if self.kind == "percent":
            return f"{shown} %"
        if self.kind in ("count", "number") and self.unit:
            unit = self.unit[:-1] if value == 1 and self.unit.endswith("s") else self.unit
            return f"{shown} {unit}"
        return f"{shown} of {self.maximum:g}"

    def questionnaire(self) -> dict[str, Any]:
        """The item as listed by ``GET /questionnaires``."""
        return {
            "code": self.code,
            "text": self.text,
            "type": self.kind,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "integer": self.integer,
            "source": self.source,
            "sign": self.sign,
            "gradeThresholds": list(self.grade_thresholds) if self.grade_thresholds else None,
            "halfPoints": self.half_points,
            "optional": self.optional,
            "reportedAs": self.reported,
            "labels": list(self.labels) if self.labels is not None else None,
            "labelBounds": list(self.label_bounds) if self.label_bounds is not None else None,
            "extras": list(self.extras),
            "description": self.description,
        }


@dataclass(frozen=True)
class Band:
    """A score interval [lower, upper) with its category and intensity (0 none .. 3 high)."""

    category: str
    intensity: int
    lower: float
    upper: float | None

    def contains(self, score: float) -> bool:
        return self.lower <= score and (self.upper is None or score < self.upper)


@dataclass(frozen=True)
class ItemProblem:
    """Why one item value cannot be scored; ``item`` is the item code."""

    item: str
    kind: ProblemKind
    message: str


class InvalidItems(ValueError):
    """Item values that cannot be scored; ``problems`` says which and why."""

    def __init__(self, system: str, problems: Sequence[ItemProblem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{system}: " + "; ".join(p.message for p in self.problems))


@dataclass(frozen=True)
class ScoringSystem:
    """A scoring system: its items, formula, bands and literature."""

    code: str
    title: str
    description: str
    automatic: bool
    items: tuple[Item, ...]
    bands: tuple[Band, ...]
    formula: Formula
    reference: str
    pathologies: tuple[str, ...]  # ICD-11 codes it scores (children included); () = any condition
    allowed_sites: frozenset[str] | None = None
    decimals: int = 0
    media: MediaKind = "lesion"  # what the report attaches (masks, maps, an annotated image, nothing); manual: "none"
    reports_items: bool = True  # False: the report's ``item`` is null (asalt, avasi)
    annotation_title: str | None = None  # title of the annotated image (media "annotation")
    global_bands: tuple[Band, ...] | None = None  # bands of the whole-body score when they differ
    score_range: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        codes = [item.code for item in self.items]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{self.code}: duplicate item codes")
        if self.automatic != any(item.source == "ai" for item in self.items):
            raise ValueError(f"{self.code}: automatic systems, and only they, have AI items")
        if not self.automatic and self.media == "lesion":
            object.__setattr__(self, "media", "none")  # the default: a questionnaire's photo is not analysed
        if not self.automatic and self.media != "none":
            raise ValueError(f"{self.code}: manual systems attach no media")
        if (self.media == "annotation") != (self.annotation_title is not None):
            raise ValueError(f"{self.code}: annotated media, and only they, have an annotation title")
        lowest = self.formula.local({item.code: item.minimum for item in self.items})
        highest = self.formula.local({item.code: item.maximum for item in self.items})
        score_range = (round_half_up(lowest, self.decimals), round_half_up(highest, self.decimals))
        object.__setattr__(self, "score_range", score_range)
        _check_bands(self.code, self.bands, self.score_range[0])
        if self.global_bands is not None:
            _check_bands(self.code, self.global_bands, self.score_range[0])

    @property
    def scores_any_condition(self) -> bool:
        """Whether the system scores any condition, one outside the catalogue included (nsil)."""
        return not self.pathologies

    @property
    def supports_global(self) -> bool:
        return self.formula.supports_global

    @property
    def modes(self) -> tuple[str, ...]:
        if not self.automatic:
            return ("manual",)
        return ("local", "global") if self.supports_global else ("local",)

    def item(self, code: str) -> Item:
        for item in self.items:
            if item.code == code:
                return item
        raise KeyError(f"{self.code} has no item {code!r}")

    def ai_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.source == "ai")

    def clinician_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.source == "clinician")

    def applies_to(self, icd11_code: str) -> bool:
        """Whether the system scores this condition: one of its pathologies is the code or an ancestor.
        Where a client may know only the parent category, the parent is a pathology of its own (ED70
        "Alopecia or hair loss" for SALT), never implied: GPPGA does not score every psoriasis.

        A system without pathologies scores any condition.
        """
        if self.scores_any_condition:
            return True
        code = icd11_code.strip().upper()
        return any(_covers(pathology, code) for pathology in self.pathologies)

    def allows_site(self, body_site: str) -> bool:
        """Whether an image of ``body_site`` can be scored with this system."""
        return body_site in BODY_SITES and (self.allowed_sites is None or body_site in self.allowed_sites)

    def check(self, values: Mapping[str, Any], *, sources: Collection[ItemSource] = ALL_SOURCES,
              whole_body: bool = False) -> list[ItemProblem]:
        """Problems with the values of the items that ``sources`` supply; empty when all is well.

        A code that is not an item of those sources is ``unknown_item``, so a client that
        sends an AI-supplied item as a clinical input is told so. Optional items may be
        left out, except those the whole-body score needs when ``whole_body`` is set.
        """
        expected = [item for item in self.items if item.source in sources]
        needed = set(self.formula.global_inputs) if whole_body else set()
        problems = [
            p for item in expected
            if not (item.optional and item.code not in needed and values.get(item.code) is None)
            and (p := _problem(item, values.get(item.code))) is not None
        ]
        known = {item.code for item in expected}
        problems += [
            ItemProblem(code, "unknown_item", f"{code!r} is not a {'/'.join(sorted(sources))} item of {self.code}")
            for code in values
            if code not in known
        ]
        return problems

    def local_score(self, values: Mapping[str, float], body_site: str | None = None) -> float:
        """The score of one body site or one questionnaire, rounded to ``decimals``."""
        self._validate(values, body_site)
        return round_half_up(self.formula.local(values, body_site), self.decimals)

    def contribution(self, values: Mapping[str, float], body_site: str | None = None) -> float | None:
        """This site's share of the whole-body score (the local score weighted by the site's region).

        None when the values cannot give one (AVASI without hand units).
        """
        self._validate(values, body_site)
        share = self.formula.contribution(values, body_site)
        return None if share is None else round_half_up(share, self.decimals)

    def global_score(self, sites: Sequence[tuple[str, Mapping[str, float]]]) -> tuple[float, list[float]]:
        """Whole-body score of several imaged sites and each site's contribution, in order.

        The total is rounded once from the exact contributions, so the rounded
        contributions may differ from it by the rounding of each.
        """
        if not self.supports_global:
            raise ValueError(f"{self.code} has no whole-body combination of sites")
        if not sites:
            raise ValueError("no body sites to combine")
        for site, values in sites:
            self._validate(values, site, whole_body=True)
        self._check_same_patient(sites)
        shares = self.formula.contributions(sites)
        return round_half_up(math.fsum(shares), self.decimals), [round_half_up(s, self.decimals) for s in shares]

    def interpret(self, score: float, values: Mapping[str, float] | None = None, *,
                  whole_body: bool = False) -> Band:
        """The band of a score (after rounding it as reported).

        ``whole_body``: the score is a whole-body total (``global_score``), read with
        ``global_bands`` where the system has them (AVASI). ``values``: the item values of
        a local score, for systems whose category is read from the items (AWOSI's
        pressure-injury stage); the returned band then spans the whole scale.
        """
        category = self.formula.category(values) if values is not None and not whole_body else None
        if category is not None:
            return Band(category[0], category[1], self.score_range[0], None)
        rounded = round_half_up(score, self.decimals)
        bands = self.global_bands if whole_body and self.global_bands is not None else self.bands
        for band in bands:
            if band.contains(rounded):
                return band
        raise ValueError(f"{self.code} score {score} is below the scale")

    def questionnaire(self) -> dict[str, Any]:
        """The system as listed by ``GET /questionnaires``."""
        return {
            "identifier": f"urn:dermq:questionnaire:{self.code}",
            "code": self.code,
            "mode": list(self.modes),
            "title": self.title,
            "description": self.description,
            "reference": self.reference,
            "pathologies": list(self.pathologies),
            "anyCondition": self.scores_any_condition,
            "allowedBodySites": sorted(self.allowed_sites) if self.allowed_sites is not None else None,
            "items": [item.questionnaire() for item in self.items],
            "bands": _bands_json(self.bands),
            "globalBands": _bands_json(self.global_bands) if self.global_bands is not None else None,
            "categoryFromItems": self.formula.category({}) is not None,
            "scoreRange": {"minimum": self.score_range[0], "maximum": self.score_range[1]},
            "decimals": self.decimals,
            "media": self.media,
            "reportsItems": self.reports_items,
            "annotationTitle": self.annotation_title,
        }

    def _validate(self, values: Mapping[str, Any], body_site: str | None, *, whole_body: bool = False) -> None:
        if body_site is not None and not self.allows_site(body_site):
            raise ValueError(f"{self.code} cannot score body site {body_site!r}")
        problems = self.check(values, whole_body=whole_body)
        if problems:
            raise InvalidItems(self.code, problems)

    def _check_same_patient(self, sites: Sequence[tuple[str, Mapping[str, float]]]) -> None:
        for item in self.items:
            if item.per_patient and len({float(values[item.code]) for _, values in sites}) > 1:
                raise ValueError(f"{self.code}: {item.code} describes the patient and must be equal on every site")


def _bands_json(bands: Sequence[Band]) -> list[dict[str, Any]]:
    return [{"category": b.category, "intensity": b.intensity, "lower": b.lower, "upper": b.upper} for b in bands]


def _problem(item: Item, value: Any) -> ItemProblem | None:
    """The first problem with one item value, or None."""
    if value is None:
        return ItemProblem(item.code, "missing", f"{item.code} is required")
    if isinstance(value, bool):
        if item.kind == "boolean":
            return None
        return ItemProblem(item.code, "not_a_number", f"{item.code} must be a number, not a yes/no answer")
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return ItemProblem(item.code, "not_a_number", f"{item.code} must be a finite number")
    if not item.minimum <= value <= item.maximum:
        return ItemProblem(
            item.code, "out_of_range", f"{item.code} must be between {item.minimum:g} and {item.maximum:g}"
        )
    if item.integer and value != int(value):
        return ItemProblem(item.code, "not_integer", f"{item.code} must be a whole number")
    if item.half_points and (2 * value != int(2 * value) or value == 0.5):
        return ItemProblem(item.code, "not_integer", f"{item.code} must be a whole number or, from 1 up, a half point")
    return None


def _check_bands(code: str, bands: Sequence[Band], start: float) -> None:
    """Bands start at the bottom of the scale, follow each other without gaps and end open."""
    if not bands or bands[0].lower != start or bands[-1].upper is not None:
        raise ValueError(f"{code}: bands must start at {start} and end without an upper bound")
    for before, after in pairwise(bands):
        if before.upper is None or before.upper != after.lower or before.lower >= before.upper:
            raise ValueError(f"{code}: bands {before.category!r} and {after.category!r} do not meet")
    if any(b.intensity not in (0, 1, 2, 3) for b in bands):
        raise ValueError(f"{code}: intensity must be 0-3")


def _bands(*rows: tuple[str, int, float]) -> tuple[Band, ...]:
    """Contiguous bands from (category, intensity, lower bound) rows, lowest first."""
    uppers = [row[2] for row in rows[1:]] + [None]
    return tuple(Band(category, intensity, lower, upper) for (category, intensity, lower), upper in zip(rows, uppers))


# --- items -----------------------------------------------------------------------------

GRADES_0_4 = "0 none, 1 slight, 2 moderate, 3 marked, 4 very marked"
GRADES_0_3 = "0 none, 1 mild, 2 moderate, 3 severe"
AREA_SCORE_TEXT = "converted to the area score 0-6 (0 %, 1-9 %, 10-29 %, 30-49 %, 50-69 %, 70-89 %, 90-100 %)"
REGION_NAMES = {"head": "Head and neck", "upperLimbs": "Upper limbs", "trunk": "Trunk", "lowerLimbs": "Lower limbs"}

# Readings of item values (Item.labels).
GRADE4_LABELS = ("None", "Slight", "Moderate", "Marked", "Very marked")
GRADE3_LABELS = ("None", "Mild", "Moderate", "Severe")
AREA_LABELS = ("0 %", "1-9 %", "10-29 %", "30-49 %", "50-69 %", "70-89 %", "90-100 %")
# Itch and other 0-10 numeric rating scales: mild under 4, moderate 4 to under 7, severe 7 to under 9,
# very severe from 9 (Reich et al. 2012).
NRS_LABELS, NRS_BOUNDS = ("None", "Mild", "Moderate", "Severe", "Very severe"), (ABOVE_ZERO, 4.0, 7.0, 9.0)
DLQI_LABELS = ("Not at all", "A little", "A lot", "Very much")
GAGS_LABELS = ("No lesions", "Comedones", "Papules", "Pustules", "Nodules")
WHEALS_LABELS = ("None", "Mild (< 20)", "Moderate (20-50)", "Intense (> 50 or large confluent areas of wheals)")
ITCH_LABELS = ("None", "Mild (present but not annoying or troublesome)",
               "Moderate (troublesome but does not interfere with normal daily activity or sleep)",
               "Severe (interferes with normal daily activity or sleep)")
# Inflammatory lesions on the imaged area, after the half-face bands of Hayashi et al. 2008.
ACNE_COUNT_LABELS, ACNE_COUNT_BOUNDS = ("None", "Mild", "Moderate", "Severe", "Very severe"), (1.0, 6.0, 21.0, 51.0)

PASI_SIGNS = (
    ("erythema", "Erythema"),
    ("induration", "Induration"),
    ("desquamation", "Desquamation"),
)
EASI_SIGNS = (  # the whole-body EASI form (dermq's own item codes)
    ("erythema", "Erythema"),
    ("oedema", "Oedema/papulation"),
    ("excoriation", "Excoriation"),
    ("lichenification", "Lichenification"),
)
AEASI_SIGNS = (  # (item, sign, text)
    ("redness", "erythema", "Redness"),
    ("thickness", "oedema", "Thickness"),
    ("scratching", "excoriation", "Scratching"),
    ("lichenification", "lichenification", "Lichenification"),
)
SCORAD_SIGNS = (  # (item, sign, text): SCORAD B, each 0-3
    ("crusting", "oozing", "Crusting"),
    ("dryness", "dryness", "Dryness"),
    ("erythema", "erythema", "Erythema"),
    ("excoriation", "excoriation", "Excoriation"),
    ("lichenification", "lichenification", "Lichenification"),
    ("swelling", "oedema", "Swelling"),
)
SCORAD_MANUAL_ORDER = ("erythema", "swelling", "crusting", "excoriation", "lichenification", "dryness")


def _ai(code: str, text: str, maximum: float, *, sign: str | None = None, kind: ItemKind = "ordinal",
        thresholds: tuple[float, ...] | None = None, description: str = "", labels: tuple[str, ...] | None = None,
        label_bounds: tuple[float, ...] | None = None, extras: tuple[str, ...] = ()) -> Item:
    return Item(code, text, kind, 0.0, maximum, "ai", kind != "percent", sign or code, thresholds, description,
                labels=labels, label_bounds=label_bounds, extras=extras)


def _clinician(code: str, text: str, maximum: float, *, kind: ItemKind = "ordinal", integer: bool = True,
               minimum: float = 0.0, description: str = "", per_patient: bool = False,
               half_points: bool = False, labels: tuple[str, ...] | None = None,
               label_bounds: tuple[float, ...] | None = None, unit: str = "", extras: tuple[str, ...] = (),
               optional: bool = False, reported: Reported = "value") -> Item:
    return Item(code, text, kind, minimum, maximum, "clinician", integer and not half_points, None, None,
                description, per_patient, half_points, labels, label_bounds, unit, extras, optional, reported)


def _boolean(code: str, text: str, description: str = "0 no, 1 yes") -> Item:
    return _clinician(code, text, 1, kind="boolean", description=description)


def _nrs(code: str, text: str, description: str, *, integer: bool = False, per_patient: bool = True) -> Item:
    return _clinician(code, text, 10, kind="number", integer=integer, per_patient=per_patient,
                      labels=NRS_LABELS, label_bounds=NRS_BOUNDS, description=description)


def _regional_items(signs: Sequence[tuple[str, str]], maximum: float, description: str, *,
                    half_points: bool = False, labels: tuple[str, ...] | None = None) -> tuple[Item, ...]:
    """The whole-body EASI form: every sign and the area for each of the four regions."""
    items: list[Item] = []
    for region in REGIONS:
        name = REGION_NAMES[region]
        items += [
            _clinician(region_item(region, code), f"{name}: {text}", maximum, half_points=half_points,
                       description=description, labels=labels)
            for code, text in signs
        ]
        items.append(
            _clinician(region_item(region, "area"), f"{name}: involved area (%)", 100, kind="percent",
                       integer=False, description=f"Share of the region with lesions, {AREA_SCORE_TEXT}.")
        )
    return tuple(items)


SITE_SURFACE = _clinician(
    "surface", "Surface area score", 100, kind="percent", integer=False, reported="areaScore", labels=AREA_LABELS,
    description="Percentage (0-100) of the site's PASI/EASI body zone (head and neck, upper limbs, trunk, lower "
    f"limbs) covered by the lesions seen at this site, {AREA_SCORE_TEXT}; the report shows the area score. "
    "Sites of one zone add up.",
)
PATIENT_AGE = _clinician("patientAge", "Patient age", 150, kind="number", integer=False, per_patient=True,
                         unit="years", description="Patients under 8 use the child region weights (head 0.2, "
                         "lower limbs 0.3).")
AGE = _clinician("age", "Patient age (years)", 130, kind="number", integer=False, per_patient=True, unit="years",
                 description="Patients under 8 use the child region weights (head 0.2, lower limbs 0.3).")
SCORAD_ZONE_SURFACE = _clinician(
    "surface", "Percentage of the body zone's surface area affected by the lesion.", 100, kind="percent",
    integer=False, extras=("surfaceAreaOverBsa",),
    description="Share (0-100 %) of the site's body zone (PASI/EASI region) with eczema. SCORAD A is this area as "
    "a share of the whole body: surface x the zone's share of the body surface (head 10 %, upper limbs 20 %, trunk "
    "30 %, lower limbs 40 %), reported as surfaceAreaOverBsa.",
)
SCORAD_EXTENT = _clinician("surface", "Extent (% of body surface)", 100, kind="percent", integer=False,
                           description="SCORAD A: body surface with eczema by the rule of nines.")
SCORAD_VAS = "Visual analogue scale over the last 3 days/nights: 0 none, 10 worst imaginable."
SCORAD_SYMPTOMS = (_nrs("pruritus", "Pruritus", SCORAD_VAS), _nrs("sleeplessness", "Sleeplessness", SCORAD_VAS))
WHEALS_TEXT = ("Extent or number of wheals (hives) in the last 24 hours, scored from 0 (no wheals) to 3 "
               "(many or large confluent wheals).")
ITCH_TEXT = "Severity of itch in the last 24 hours, scored from 0 (no itch) to 3 (severe itch)."
WHEALS_GRADES = "0 none, 1 mild (< 20 wheals/24 h), 2 moderate (20-50), 3 intense (> 50 or large confluent areas)"
ITCH = _clinician("pruritus", ITCH_TEXT, 3, labels=ITCH_LABELS,
                  description="0 none, 1 mild (present, not troublesome), 2 moderate (troublesome, does not interfere "
                  "with daily activity or sleep), 3 severe (interferes with them)")
IHS4_COUNTS = (  # (item, sign, text, weight, unit)
    ("nodule", "nodules", "The number of nodules identified during clinical examination.", 1, "nodules"),
    ("abscess", "abscesses", "The number of abscesses identified during clinical examination.", 2, "abscesses"),
    ("drainingTunnel", "tunnels", "The number of draining tunnels identified during clinical examination.", 4,
     "draining tunnels"),
)
GPPGA_ITEMS = (
    ("erythema", "erythema", "Erythema",
     ("0 normal or post-inflammatory hyperpigmentation, 1 faint, 2 light red, 3 bright red, 4 deep fiery red")),
    ("desquamation", "desquamation", "Desquamation",
     ("scaling/crusting: 0 none, 1 superficial focal, 2 predominantly fine, 3 moderate, 4 severe covering almost "
      "all lesions")),
    ("pustulation", "pustulation", "Pustulation",
     ("0 none visible, 1 low-density occasional small discrete pustules, 2 moderate density grouped discrete "
      "small pustules, 3 high-density pustules with some coalescence, 4 very high-density pustules with "
      "pustular lakes")),
)
GAGS_REGIONS = (("forehead", "Forehead", 2), ("rightCheek", "Right cheek", 2), ("leftCheek", "Left cheek", 2),
                ("nose", "Nose", 1), ("chin", "Chin", 1), ("chestAndUpperBack", "Chest and upper back", 3))
DLQI_QUESTIONS = (
    ("question1", "Itchy, sore, painful or stinging skin"),
    ("question2", "Embarrassment or self-consciousness"),
    ("question3", "Interference with shopping or looking after home or garden"),
    ("question4", "Influence on the clothes worn"),
    ("question5", "Effect on social or leisure activities"),
    ("question6", "Difficulty with sport"),
    ("question7", "Prevented working or studying, or problems at work or study"),
    ("question8", "Problems with partner, close friends or relatives"),
    ("question9", "Sexual difficulties"),
    ("question10", "Problems caused by the treatment"),
)
SEVEN_POINT = (  # (item, text, weight): three major features score 2, four minor 1
    ("changeInSize", "Change in size", 2),
    ("irregularPigmentation", "Irregular pigmentation (colour)", 2),
    ("irregularBorder", "Irregular border (shape)", 2),
    ("inflammation", "Inflammation", 1),
    ("largerThanOtherLesions", "Larger than the other lesions (largest diameter 7 mm or more)", 1),
    ("itchOrAlteredSensation", "Itch or altered sensation", 1),
    ("crustingOrBleeding", "Crusting or bleeding (oozing)", 1),
)
PURE4_QUESTIONS = (("question1", "Signs suggestive of dactylitis (a swollen 'sausage' finger or toe)"),
                   ("question2", "Inflammatory heel pain"), ("question3", "Bilateral buttock pain"),
                   ("question4", "Peripheral joint pain with swelling (patients under 50)"))
UCT_QUESTIONS = (  # (item, text, answers 0..4)
    ("manifestations", "How much have you suffered from the physical symptoms (itch, wheals, swelling)?",
     ("Very much", "Much", "Somewhat", "A little", "Not at all")),
    ("qualityOfLife", "How much was your quality of life affected by the urticaria?",
     ("Very much", "Much", "Somewhat", "A little", "Not at all")),
    ("treatmentNotEnough", "How often was the treatment not enough to control the symptoms?",
     ("Very often", "Often", "Sometimes", "Seldom", "Not at all")),
    ("overallUnderControl", "Overall, how well have you had your urticaria under control?",
     ("Not at all", "A little", "Somewhat", "Well", "Very well")),
)
UCT_TEXT = ("Last 4 weeks; answers score 0 (very much / very often / not at all controlled) "
            "to 4 (not at all / never / completely)")
# AWOSI signs that make a wound worse (one point each when present). Delimited borders, serous
# or fibrinous exudate, granulation, epithelia and closed/healed skin are signs of healing and
# score nothing.
AWOSI_ADVERSE = (
    "bordersDamaged", "bordersDiffused", "bordersThickened", "bordersIndistinguishable",
    "perilesionalErythema", "perilesionalMaceration", "biofilmCompatibleTissue",
    "affectedTissueDermisEpidermis", "affectedTissueSubcutaneous", "affectedTissueMuscle",
    "affectedTissueBoneAndOrAdjacent",
    "exudationPurulent", "exudationBloody", "exudationGreenish",
    "tissueInWoundBedSlough", "tissueInWoundBedNecrotic",
)
# NSIL: inflammatory lesions counted in the image -> grade 0-3 (0 none, 1: 1-4, 2: 5-14, 3: 15 or more).
NSIL_INFLAMMATION_THRESHOLDS = (1.0, 5.0, 15.0)
RESVECH_ITEMS = (  # (item, text, maximum)
    ("woundDimensions", "Wound dimensions (area)", 4),
    ("tissues", "Depth / tissues affected", 4),
    ("edges", "Wound edges", 4),
    ("tissueInWoundBed", "Type of tissue in the wound bed", 4),
    ("exudate", "Amount of exudate", 4),
    ("frequencyOfPain", "Frequency of pain", 4),
    ("macerationAroundWound", "Maceration around the wound", 1),
    ("tunneling", "Tunnelling", 4),
    ("increasingPain", "Increasing pain", 4),
    ("erythemaAroundWound", "Erythema around the wound", 4),
    ("edemaAroundWound", "Oedema around the wound", 4),
    ("temperatureRise", "Rise in temperature around the wound", 1),
    ("increasingExudate", "Increasing exudate", 4),
    ("purulentExudate", "Purulent exudate", 1),
    ("tissueFriableOrBleedsEasily", "Friable tissue or bleeds easily", 4),
    ("stationaryWound", "Stationary wound (no healing progress)", 4),
    ("biofilmCompatibleTissue", "Biofilm-compatible tissue", 4),
    ("odor", "Odour", 4),
    ("hypergranulation", "Hypergranulation", 4),
    ("increasingWound", "Increasing wound size", 4),
    ("satelliteLesions", "Satellite lesions", 4),
    ("tissuePaleness", "Pale tissue", 4),
)
SCOVID_SYMPTOMS = (  # 0-3 each
    ("fever", "Fever"), ("cough", "Cough"), ("cephalea", "Headache (cephalea)"),
    ("myalgiaOrArthralgia", "Muscle or joint pain (myalgia or arthralgia)"), ("malaise", "Malaise"),
    ("lossOfTasteOrOlfactory", "Loss of taste or smell"), ("shortnessOfBreath", "Shortness of breath"),
    ("otherSkinProblems", "Other skin problems"),
)


# --- bands -----------------------------------------------------------------------------

PASI_BANDS = _bands(("None", 0, 0.0), ("Mild", 1, 0.1), ("Moderate to severe", 3, 10.1))
EASI_BANDS = _bands(("Clear", 0, 0.0), ("Almost clear", 1, 0.1), ("Mild", 1, 1.1), ("Moderate", 2, 7.1),
                    ("Severe", 3, 21.1), ("Very severe", 3, 50.1))
SCORAD_BANDS = _bands(("None", 0, 0.0), ("Mild", 1, 0.1), ("Moderate", 2, 25.0), ("Severe", 3, 50.0))
UAS_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 3), ("Severe", 3, 4))
UAS7_BANDS = _bands(("Urticaria-free", 0, 0), ("Well controlled", 1, 1), ("Mild", 1, 7), ("Moderate", 2, 16),
                    ("Severe", 3, 28))
IHS4_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 4), ("Severe", 3, 11))
ACNE_COUNT_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 6), ("Severe", 3, 21), ("Very severe", 3, 51))
GLOBAL_ASSESSMENT_BANDS = _bands(("Clear", 0, 0), ("Almost clear", 1, 1), ("Mild", 1, 2), ("Moderate", 2, 3),
                                 ("Severe", 3, 4))
SALT_BANDS = _bands(("None", 0, 0.0), ("Mild", 1, 0.1), ("Moderate", 2, 20.1), ("Severe", 3, 50.0))
VASI_BANDS = _bands(("None", 0, 0.0), ("Mild", 1, 0.01), ("Moderate", 2, 3.0), ("Severe", 3, 10.01))
# One site's VASI depigmentation level (0, 10, 25, 50, 75, 90, 100 %): dermq's own reading of the
# Hamzavi levels, specks and a pigmented majority mild, half moderate, a depigmented majority severe.
AVASI_LEVEL_BANDS = _bands(("None", 0, 0.0), ("Mild", 1, 0.01), ("Moderate", 2, 50.0), ("Severe", 3, 75.0))
GAGS_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 19), ("Severe", 3, 31), ("Very severe", 3, 39))
DLQI_BANDS = _bands(("No effect", 0, 0), ("Small effect", 1, 2), ("Moderate effect", 2, 6),
                    ("Very large effect", 3, 11), ("Extremely large effect", 3, 21))
PURE4_BANDS = _bands(("Negative", 0, 0), ("Positive", 3, 1))
SEVEN_POINT_BANDS = _bands(("Low risk", 1, 0), ("High risk", 3, 3))
UCT_BANDS = _bands(("Poorly controlled", 3, 0), ("Well controlled", 1, 12), ("Complete control", 0, 16))
# dermq's own readings (no published bands): roughly even thirds of the scale above 0.
AWOSI_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 6), ("Severe", 3, 11))
NSIL_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 4), ("Severe", 3, 7))
RESVECH_BANDS = _bands(("Healed", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 27), ("Severe", 3, 53))
SCOVID_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 15), ("Severe", 3, 30))


# --- references ------------------------------------------------------------------------

REF_PASI = ("Fredriksson T, Pettersson U. Severe psoriasis - oral therapy with a new retinoid. Dermatologica "
            "1978;157:238-244. Bands: Mrowietz U et al. Definition of treatment goals for moderate to severe "
            "psoriasis: a European consensus. Arch Dermatol Res 2011;303:1-10; Finlay AY. Current severe psoriasis "
            "and the rule of tens. Br J Dermatol 2005;152:861-867.")
REF_EASI = ("Hanifin JM et al. The eczema area and severity index (EASI): assessment of reliability in atopic "
            "dermatitis. Exp Dermatol 2001;10:11-18; Hanifin JM et al. The Eczema Area and Severity Index - a "
            "practical guide. Dermatitis 2022 (half points). Bands: Leshem YA et al. What the Eczema Area and Severity "
            "Index score tells us about the severity of atopic dermatitis: an interpretability study. "
            "Br J Dermatol 2015;172:1353-1357.")
REF_SCORAD = ("European Task Force on Atopic Dermatitis. Severity scoring of atopic dermatitis: the SCORAD index. "
              "Dermatology 1993;186:23-31. Bands: Chopra R et al. Severity strata for EASI, modified EASI, "
              "modified SCORAD, SCORAD, objective-SCORAD, ADSI and POEM. Br J Dermatol 2017;177:1316-1321.")
REF_UAS = ("Mlynek A et al. How to assess disease activity in patients with chronic urticaria? Allergy "
           "2008;63:777-780; Zuberbier T et al. The international EAACI/GA2LEN/EuroGuiDerm/APAAACI guideline for "
           "the definition, classification, diagnosis, and management of urticaria. Allergy 2022;77:734-766.")
REF_UAS7_BANDS = ("Stull D et al. Measurement properties of the Urticaria Activity Score and the Urticaria "
                  "Activity Score over 7 days in patients with chronic spontaneous urticaria. Br J Dermatol "
                  "2017;177:1093-1101.")
REF_IHS4 = ("Zouboulis CC et al. Development and validation of the International Hidradenitis Suppurativa "
            "Severity Score System (IHS4), a novel dynamic scoring system to assess HS severity. Br J Dermatol "
            "2017;177:1401-1409.")
REF_ACNE_COUNT = ("Hayashi N, Akamatsu H, Kawashima M; Acne Study Group. Establishment of grading criteria for "
                  "acne severity. J Dermatol 2008;35:255-260.")
REF_GPPGA = ("Burden AD, Choon SE, Gottlieb AB, Navarini AA, Warren RB. Clinical disease measures in generalized "
             "pustular psoriasis. Am J Clin Dermatol 2022;23(Suppl 1):39-50.")
REF_SALT = ("Olsen EA et al. Alopecia areata investigational assessment guidelines - Part II. J Am Acad Dermatol "
            "2004;51:440-447. Bands: King BA et al. Defining severity in alopecia areata: current perspectives "
            "and a multidimensional framework. Dermatol Ther (Heidelb) 2022;12:825-834.")
REF_VASI = ("Hamzavi I et al. Parametric modeling of narrowband UV-B phototherapy for vitiligo using a novel "
            "quantitative tool: the Vitiligo Area Scoring Index. Arch Dermatol 2004;140:677-683. Bands: "
            "body-surface-area strata (under 3 %, 3-10 %, over 10 %) of the National Psoriasis Foundation, "
            "applied to the whole-body VASI because it is the body surface fully depigmented; VASI has no published "
            "bands. One site's depigmentation level is read with dermq's own bands (AVASI_LEVEL_BANDS).")
REF_GAGS = ("Doshi A, Zaheer A, Stiller MJ. A comparison of current acne grading systems and proposal of a novel "
            "system. Int J Dermatol 1997;36:416-418.")
REF_DLQI = ("Finlay AY, Khan GK. Dermatology Life Quality Index (DLQI) - a simple practical measure for routine "
            "clinical use. Clin Exp Dermatol 1994;19:210-216. Bands: Hongbo Y et al. Translating the science of "
            "quality of life into practice: what do Dermatology Life Quality Index scores mean? "
            "J Invest Dermatol 2005;125:659-664.")
REF_PGA = ("Langley RGB, Ellis CN. Evaluating psoriasis with Psoriasis Area and Severity Index, Psoriasis Global "
           "Assessment, and Lattice System Physician's Global Assessment. J Am Acad Dermatol 2004;51:563-569 "
           "(the static PGA averaged over erythema, induration and scaling, rounded to the nearest grade).")
REF_PURE4 = ("Audureau E et al. Psoriatic arthritis screening by the dermatologist: development and first "
             "validation of the 'PURE-4 scale'. J Eur Acad Dermatol Venereol 2018;32(11).")
REF_SEVEN_POINT = ("MacKie RM. Clinical recognition of early invasive malignant melanoma. BMJ 1990;301:1005-1006; "
                   "Walter FM et al. Using the 7-point checklist as a diagnostic aid for pigmented skin lesions in "
                   "general practice. Br J Gen Pract 2013;63:e345-e353; NICE guideline NG12 (2015): refer at 3 "
                   "points or more.")
REF_UCT = ("Weller K et al. Development and validation of the Urticaria Control Test: a patient-reported outcome "
           "instrument for assessing urticaria control. J Allergy Clin Immunol 2014;133:1365-1372.")

REF_ITCH_NRS = ("Reich A et al. Visual analogue scale: evaluation of the instrument for the assessment of pruritus. "
                "Acta Derm Venereol 2012;92:497-501 (mild < 4, moderate 4 to < 7, severe 7 to < 9, very severe >= 9).")
REF_NPIAP = ("Edsberg LE, Black JM, Goldberg M, McNichol L, Moore L, Sieggreen M. Revised National Pressure Ulcer "
             "Advisory Panel Pressure Injury Staging System. J Wound Ostomy Continence Nurs 2016;43:585-597.")
REF_BWAT = ("Bates-Jensen BM, Vredevoe DL, Brecht ML. Validity and reliability of the Pressure Sore Status Tool. "
            "Decubitus 1992;5(6):20-28; Harris C et al. Bates-Jensen wound assessment tool: pictorial guide "
            "validation project. J Wound Ostomy Continence Nurs 2010;37:253-259.")
REF_RESVECH = ("Restrepo-Medrano JC, Verdú Soriano J. Desarrollo de un índice de medida de la evolución hacia la "
               "cicatrización de las heridas crónicas. Gerokomos 2011;22:176-183.")
REF_AWOSI = (f"Signs: {REF_BWAT} {REF_RESVECH} Stage: {REF_NPIAP} The combination (severity sum, stage read from "
             "the deepest tissue, bands) is dermq's own and not a validated index.")
REF_NSIL = ("Sign grades as in EASI and SCORAD (Hanifin JM et al. Exp Dermatol 2001;10:11-18; European Task Force "
            "on Atopic Dermatitis. Dermatology 1993;186:23-31); inflammatory lesions counted as in acne lesion "
            "counting (Hayashi N et al. J Dermatol 2008;35:255-260). The index, its count grades and its bands are "
            "dermq's own and not validated.")
REF_SCOVID = ("Galván Casas C et al. Classification of the cutaneous manifestations of COVID-19: a rapid "
              "prospective nationwide consensus study in Spain with 375 cases. Br J Dermatol 2020;183:71-77; "
              "symptoms of the WHO COVID-19 case definition (World Health Organization, Public health "
              "surveillance for COVID-19, interim guidance, 2020). The sum and its bands are dermq's own reading; "
              "no bands are published.")

PSORIASIS, GPP, ATOPIC_ECZEMA, URTICARIA, SPONTANEOUS_URTICARIA = "EA90", "EA90.40", "EA80", "EB00", "EB00.0"
ECZEMA_UNSPECIFIED, URTICARIA_UNSPECIFIED = "EA89", "EB05"
HS, ACNE, HAIR_LOSS, ALOPECIA_AREATA, VITILIGO = "ED92.0", "ED80", "ED70", "ED70.2", "ED63.0"
PIGMENTED_LESIONS = ("2C30", "2E63", "2F20")
ECZEMA = (ATOPIC_ECZEMA, ECZEMA_UNSPECIFIED)
URTICARIAS = (URTICARIA, URTICARIA_UNSPECIFIED)
# Pressure ulceration (EH90 and its grades) and the chronic ulcers of the catalogue: ischaemic and
# neuropathic skin ulceration.
CHRONIC_WOUNDS = ("EH90", "EF60", "ED30.0")
ANY_CONDITION: tuple[str, ...] = ()
# DLQI is disease-independent; it is offered for the chronic skin diseases of the catalogue.
DLQI_PATHOLOGIES = (PSORIASIS, ATOPIC_ECZEMA, "EA81", "EA89", "EK00", "EK02", "EA91", URTICARIA, HS, ACNE,
                    "ED90.0", ALOPECIA_AREATA, VITILIGO, "EB40", "EB41", "EB60")


def _annotated(lesions: str) -> str:
    return f"{ANNOTATION_TITLE} {lesions}"


def _pasi_weights(age: float | None) -> Mapping[Region, float]:
    return REGION_WEIGHTS_PASI


def _easi_weights(age: float | None) -> Mapping[Region, float]:
    if age is None:
        raise ValueError("EASI weights depend on the patient's age")
    return easi_region_weights(age)


def _ihs4_counts(source: ItemSource) -> tuple[Item, ...]:
    if source == "ai":
        return tuple(_ai(code, text, MAX_COUNT, sign=sign, kind="count") for code, sign, text, _, _ in IHS4_COUNTS)
    return tuple(_clinician(code, text, MAX_COUNT, kind="count", unit=unit) for code, _, text, _, unit in IHS4_COUNTS)


def _catalogue() -> tuple[ScoringSystem, ...]:
    """Every scoring system, automatic ones first (the order of ``SYSTEMS``)."""
    pasi_codes = tuple(code for code, _ in PASI_SIGNS)
    easi_codes = tuple(code for code, _ in EASI_SIGNS)
    aeasi_codes = tuple(code for code, _, _ in AEASI_SIGNS)
    scorad_codes = tuple(code for code, _, _ in SCORAD_SIGNS)
    # SCORAD = A/5 + 7B/2 + C
    scorad_weights = {"surface": 0.2, **dict.fromkeys(scorad_codes, 3.5),
                      **dict.fromkeys((i.code for i in SCORAD_SYMPTOMS), 1.0)}
    ihs4_weights = {code: float(w) for code, _, _, w, _ in IHS4_COUNTS}
    gppga = WeightedSum(dict.fromkeys((c for c, *_ in GPPGA_ITEMS), 1.0), scale=1 / 3, grades=(1.5, 2.5, 3.5))
    uas = WeightedSum({"wheals": 1.0, "pruritus": 1.0})
    wheals_ai = _ai("wheals", WHEALS_TEXT, 3, thresholds=(1, 20, 51), description=WHEALS_GRADES,
                    labels=WHEALS_LABELS, extras=("whealsCount",))
    scorad_grade = {code: _clinician(code, text, 3, labels=GRADE3_LABELS, description=GRADES_0_3)
                    for code, _, text in SCORAD_SIGNS}
    return (
        ScoringSystem(
            "apasi", "Automatic PASI (one body site)",
            "Psoriasis Area and Severity Index of an imaged site: erythema, induration and desquamation from the "
            "image, the involved share of the site's body zone (surface, %) from the clinician, reported as the "
            "area score. Local: (E + I + D) x area score; its contribution is weighted by the zone. The "
            "whole-body PASI is the automatic/global combination of the imaged sites.",
            True, tuple(_ai(code, text, 4, description=GRADES_0_4) for code, text in PASI_SIGNS) + (SITE_SURFACE,),
            PASI_BANDS, RegionalSites(pasi_codes, _pasi_weights, area="surface"), REF_PASI, (PSORIASIS,),
            decimals=1, media="lesion",
        ),
        ScoringSystem(
            "aeasi", "Automatic EASI (one body site)",
            "Eczema Area and Severity Index of an imaged site: redness, thickness (oedema/papulation), scratching "
            "(excoriation) and lichenification from the image; the involved share of the site's body zone "
            "(surface, %, reported as the area score) and the patient's age from the clinician.",
            True, tuple(_ai(code, text, 3, sign=sign, description=GRADES_0_3) for code, sign, text in AEASI_SIGNS)
            + (SITE_SURFACE, PATIENT_AGE), EASI_BANDS,
            RegionalSites(aeasi_codes, _easi_weights, area="surface", age="patientAge"), REF_EASI, ECZEMA,
            decimals=1, media="lesion",
        ),
        ScoringSystem(
            "ascorad", "Automatic SCORAD",
            "SCORAD with the six intensity signs (B) read from an image of a representative lesion; the affected "
            "share of the body zone (surface) and the itch and sleeplessness scales (C) from the clinician. "
            "SCORAD = A/5 + 7B/2 + C, with A = surface x the zone's share of the body surface.",
            True, (SCORAD_ZONE_SURFACE,)
            + tuple(_ai(code, text, 3, sign=sign, description=GRADES_0_3) for code, sign, text in SCORAD_SIGNS)
            + SCORAD_SYMPTOMS, SCORAD_BANDS, ZoneScorad(scorad_codes), f"{REF_SCORAD} Symptom readings: {REF_ITCH_NRS}",
            ECZEMA, decimals=1, media="lesion",
        ),
        ScoringSystem(
            "auas", "Automatic UAS (daily urticaria activity)",
            "Daily Urticaria Activity Score: the wheal grade from the wheals counted in the image, itch from the "
            "patient. UAS = wheals + pruritus.",
            True, (wheals_ai, ITCH), UAS_BANDS, uas, REF_UAS, URTICARIAS,
            media="annotation", annotation_title=_annotated("urticaria wheals"),
        ),
        ScoringSystem(
            "aihs4", "Automatic IHS4 (one body site)",
            "International Hidradenitis Suppurativa Severity Score of the lesions counted in the image: "
            "nodules + 2 x abscesses + 4 x draining tunnels. Sites add up.",
            True, _ihs4_counts("ai"), IHS4_BANDS, WeightedSum(ihs4_weights, supports_global=True), REF_IHS4, (HS,),
            media="annotation", annotation_title=_annotated("HS inflammatory lesions"),
        ),
        ScoringSystem(
            "aladin", "Automatic acne lesion count",
            "Inflammatory acne lesions (papules and pustules) counted on an image, graded with the half-face "
            "count bands of Hayashi et al. (validated on one side of the face; on other sites dermq's reading).",
            True, (_ai("acne", "Number of acne lesions", MAX_COUNT, sign="acneLesions", kind="count",
                       labels=ACNE_COUNT_LABELS, label_bounds=ACNE_COUNT_BOUNDS, extras=("acneDensity",)),),
            ACNE_COUNT_BANDS, WeightedSum({"acne": 1.0}), REF_ACNE_COUNT, (ACNE,),
            media="annotation", annotation_title=_annotated("acne pimples"),
        ),
        ScoringSystem(
            "agppga", "Automatic GPPGA",
            "Generalized Pustular Psoriasis Physician Global Assessment from the image: the mean of erythema, "
            "pustulation and desquamation (scaling/crusting, 0-4) graded 0 (mean 0), 1 (< 1.5), 2 (< 2.5), "
            "3 (< 3.5), 4.",
            True, tuple(_ai(c, t, 4, sign=s, description=d) for c, s, t, d in GPPGA_ITEMS), GLOBAL_ASSESSMENT_BANDS,
            gppga, REF_GPPGA, (GPP,), media="none",
        ),
        ScoringSystem(
            "asalt", "Automatic SALT (one scalp quadrant)",
            "Severity of Alopecia Tool: hair loss of the imaged scalp quadrant from the image. Quadrants weigh "
            "vertex 40 %, left 18 %, right 18 %, back 24 %. The report shows the hair and baldness maps, not the "
            "item.",
            True, (_ai("hairLoss", "Hair loss in the quadrant (%)", 100, kind="percent"),), SALT_BANDS,
            SaltQuadrants(), REF_SALT, (HAIR_LOSS,), HAIR_BEARING_SITES, decimals=1, media="hair",
            reports_items=False,
        ),
        ScoringSystem(
            "avasi", "Automatic VASI (one body site)",
            "Vitiligo Area Scoring Index of an imaged site. The local score is the degree of depigmentation from "
            "the image, rounded to the nearest VASI level (0, 10, 25, 50, 75, 90, 100 %). With the involved hand "
            "units given, the site's VASI (hand units x level) is its contribution to the whole-body VASI; "
            "without them the site has no contribution. The report shows the skin and depigmentation maps.",
            True,
            (_ai("depigmentation", "Depigmentation of the involved skin (%)", 100, kind="percent"),
             _clinician("handUnits", "Involved area (hand units)", 100, kind="number", integer=False,
                        unit="hand units", optional=True,
                        description="Optional. Vitiligo at this site in hand units (one hand, palm and fingers, is "
                        "about 1 % of body surface); needed for the whole-body VASI.")),
            AVASI_LEVEL_BANDS, VasiSites(), REF_VASI, (VITILIGO,), decimals=2, media="depigmentation",
            reports_items=False, global_bands=VASI_BANDS,
        ),
        ScoringSystem(
            "awosi", "Automatic wound assessment",
            "Wound assessment of an imaged pressure ulcer or chronic wound: periwound erythema (0-3) and 23 yes/no "
            "findings (borders, perilesional skin, biofilm, affected tissues, exudate, wound-bed tissue) from the "
            "image. Score: erythema + one point per adverse finding present (0-19). Category: the pressure-injury "
            "stage read from the deepest affected tissue (NPIAP 2016): muscle or bone Stage 4, subcutaneous "
            "tissue Stage 3, dermis-epidermis Stage 2, slough or necrosis without visible depth Unstageable, "
            "intact skin with erythema Stage 1, else Healed. The combination is dermq's own, not a validated "
            "index.",
            True,
            (_ai("erythema", "Erythema", 3, description=GRADES_0_3),)
            + tuple(_ai(code, text, 1, kind="boolean", extras=("presenceProbability",),
                        description="Present (1) when the AI's presence probability is 50 % or more")
                    for code, text in WOUND_BOOLEANS),
            AWOSI_BANDS, WoundScore("erythema", AWOSI_ADVERSE), REF_AWOSI, CHRONIC_WOUNDS, media="wound",
        ),
        ScoringSystem(
            "nsil", "Non-specific inflammatory lesions",
            "Severity of a non-specific inflammatory finding of any condition: dryness (0-3) and erythema (0-3) "
            "of the lesion and the inflammatory lesions counted in the image, graded 0 (none), 1 (1-4), 2 (5-14), "
            "3 (15 or more). Score = dryness + erythema + inflammations (0-9). The index and its bands are "
            "dermq's own reading, not a validated score.",
            True,
            (_ai("dryness", "Dryness", 3, description=GRADES_0_3),
             _ai("erythema", "Erythema", 3, description=GRADES_0_3),
             _ai("inflammations", "Inflammations", 3, sign="inflammatoryLesions",
                 thresholds=NSIL_INFLAMMATION_THRESHOLDS, extras=("inflammatoryLesionCount",),
                 description="Inflammatory lesions counted: 0 none, 1: 1-4, 2: 5-14, 3: 15 or more")),
            NSIL_BANDS, WeightedSum({"dryness": 1.0, "erythema": 1.0, "inflammations": 1.0}), REF_NSIL,
            ANY_CONDITION, media="annotation", annotation_title=_annotated("inflammatory lesions"),
        ),
        ScoringSystem(
            "pasi", "PASI (one body zone)",
            "Psoriasis Area and Severity Index of one body zone: (erythema + induration + desquamation, 0-4 each) "
            "x the zone's area score (0-6). With a body site the score is weighted by the site's PASI region "
            "(head 0.1, upper limbs 0.2, trunk 0.3, lower limbs 0.4): the zone's share of the whole-body PASI. "
            "The whole-body PASI is apasi's automatic/global combination.",
            False,
            (_clinician("surface", "Surface area score", 6, labels=AREA_LABELS,
                        description="Area score of the zone: 0 none, 1 under 10 %, 2 10-29 %, 3 30-49 %, 4 50-69 %, "
                        "5 70-89 %, 6 90-100 %"),)
            + tuple(_clinician(code, text, 4, labels=GRADE4_LABELS, description=GRADES_0_4) for code, text in PASI_SIGNS),
            PASI_BANDS, ZonePasi(pasi_codes), REF_PASI, (PSORIASIS,), decimals=1, media="none",
        ),
        ScoringSystem(
            "easi", "EASI", "Eczema Area and Severity Index, whole-body form with the four regions and the "
            "patient's age (region weights differ under 8 years).",
            False, _regional_items(EASI_SIGNS, 3, f"{GRADES_0_3}; half points from 1 up (1.5, 2.5)",
                                   half_points=True, labels=GRADE3_LABELS) + (AGE,), EASI_BANDS,
            RegionalForm(easi_codes, _easi_weights, age="age"), REF_EASI, ECZEMA, decimals=1, media="none",
        ),
        ScoringSystem(
            "scorad", "SCORAD", "SCORing Atopic Dermatitis: A/5 + 7B/2 + C, A (surface) the extent in % of the "
            "body surface.",
            False, (SCORAD_EXTENT,) + tuple(scorad_grade[c] for c in SCORAD_MANUAL_ORDER) + SCORAD_SYMPTOMS,
            SCORAD_BANDS, WeightedSum(scorad_weights), f"{REF_SCORAD} Symptom readings: {REF_ITCH_NRS}", ECZEMA,
            decimals=1, media="none",
        ),
        ScoringSystem(
            "uas", "UAS (daily urticaria activity)", "Urticaria Activity Score of one day: pruritus + wheals.",
            False, (ITCH, _clinician("wheals", WHEALS_TEXT, 3, labels=WHEALS_LABELS, description=WHEALS_GRADES)),
            UAS_BANDS, uas, REF_UAS, URTICARIAS, media="none",
        ),
        ScoringSystem(
            "uas7", "UAS7", "Urticaria Activity Score summed over 7 consecutive days (each day 0-6).",
            False,
            tuple(_clinician(f"day{d}", f"Day {d} UAS (wheals + itch)", 6) for d in range(1, 8)), UAS7_BANDS,
            WeightedSum(dict.fromkeys((f"day{d}" for d in range(1, 8)), 1.0)), f"{REF_UAS} Bands: {REF_UAS7_BANDS}",
            (SPONTANEOUS_URTICARIA,), media="none",
        ),
        ScoringSystem(
            "ihs4", "IHS4", "International Hidradenitis Suppurativa Severity Score System: "
            "nodules + 2 x abscesses + 4 x draining tunnels over the whole body.",
            False, _ihs4_counts("clinician"), IHS4_BANDS, WeightedSum(ihs4_weights), REF_IHS4, (HS,), media="none",
        ),
        ScoringSystem(
            "gags", "GAGS", "Global Acne Grading System: each of six regions graded by its most severe lesion "
            "(0 none, 1 comedone, 2 papule, 3 pustule, 4 nodule) times the region factor.",
            False,
            tuple(_clinician(c, t, 4, labels=GAGS_LABELS, description=f"Region factor {w}: 0 none, 1 comedones, "
                             "2 papules, 3 pustules, 4 nodules") for c, t, w in GAGS_REGIONS),
            GAGS_BANDS, WeightedSum({c: float(w) for c, _, w in GAGS_REGIONS}), REF_GAGS, (ACNE,), media="none",
        ),
        ScoringSystem(
            "dlqi", "DLQI", "Dermatology Life Quality Index: ten questions about the last week, each 0-3.",
            False,
            tuple(_clinician(c, t, 3, labels=DLQI_LABELS, description="0 not at all or not relevant, 1 a little, "
                             "2 a lot, 3 very much (question 7, work/study: prevented = 3)") for c, t in DLQI_QUESTIONS),
            DLQI_BANDS, WeightedSum(dict.fromkeys((c for c, _ in DLQI_QUESTIONS), 1.0)), REF_DLQI, DLQI_PATHOLOGIES,
            media="none",
        ),
        ScoringSystem(
            "pga", "PGA", "Static Physician Global Assessment of psoriasis in its averaged form: erythema, "
            "desquamation and induration graded 0-4 and the mean rounded half up to the PGA grade 0 clear to "
            "4 severe.",
            False, tuple(_clinician(c, t, 4, labels=GRADE4_LABELS, description=GRADES_0_4)
                         for c, t in (("erythema", "Erythema"), ("desquamation", "Desquamation"),
                                      ("induration", "Induration"))),
            GLOBAL_ASSESSMENT_BANDS, RoundedMean(("erythema", "desquamation", "induration")), REF_PGA, (PSORIASIS,),
            media="none",
        ),
        ScoringSystem(
            "pure4", "PURE-4", "Psoriatic arthritis screening by the dermatologist: four yes/no items; one or more "
            "positive answers warrant a rheumatology referral.",
            False, tuple(_boolean(c, t) for c, t in PURE4_QUESTIONS), PURE4_BANDS,
            WeightedSum(dict.fromkeys((c for c, _ in PURE4_QUESTIONS), 1.0)), REF_PURE4, (PSORIASIS,), media="none",
        ),
        ScoringSystem(
            "sevenPc", "7-point checklist", "Weighted 7-point checklist for pigmented lesions: three major "
            "features score 2, four minor features score 1; 3 or more is high risk and warrants urgent referral.",
            False, tuple(_boolean(c, t, f"0 no, 1 yes ({w} point{'s' if w > 1 else ''})") for c, t, w in SEVEN_POINT),
            SEVEN_POINT_BANDS, WeightedSum({c: float(w) for c, _, w in SEVEN_POINT}), REF_SEVEN_POINT,
            PIGMENTED_LESIONS, media="none",
        ),
        ScoringSystem(
            "uct", "UCT", "Urticaria Control Test: four questions about the last 4 weeks, 0-4 each; "
            "below 12 the urticaria is poorly controlled.",
            False, tuple(_clinician(c, t, 4, labels=a, description=UCT_TEXT) for c, t, a in UCT_QUESTIONS), UCT_BANDS,
            WeightedSum(dict.fromkeys((c for c, _, _ in UCT_QUESTIONS), 1.0)), REF_UCT, URTICARIAS, media="none",
        ),
        ScoringSystem(
            "salt", "SALT", "Severity of Alopecia Tool: hair loss (%) of the four scalp quadrants, weighted "
            "vertex 40 %, left 18 %, right 18 %, back 24 %.",
            False,
            tuple(_clinician(region_item(q, "hairLoss"), f"Hair loss, {q} (%)", 100, kind="percent", integer=False)
                  for q in SALT_QUADRANT_WEIGHTS),
            SALT_BANDS, WeightedSum({region_item(q, "hairLoss"): w / 100 for q, w in SALT_QUADRANT_WEIGHTS.items()}),
            REF_SALT, (HAIR_LOSS,), HAIR_BEARING_SITES, decimals=1, media="none",
        ),
        ScoringSystem(
            "resvech", "RESVECH 2.0", "Resultados Esperados de la Valoración y Evolución de la Cicatrización de "
            "las Heridas Crónicas: 22 items about the wound, its bed, exudate and signs of infection or "
            "inflammation, each 0-4 (three yes/no items 0-1); the score is their sum (0-79), 0 a healed wound. "
            "The item set and ranges follow the integration contract, which splits RESVECH 2.0's infection and "
            "inflammation checklist into graded items, so totals are not comparable with the published 0-35 "
            "scale; the bands are dermq's own reading.",
            False,
            tuple(_boolean(c, t) if m == 1 else _clinician(c, t, m, description="0 best (absent / healed) to 4 worst")
                  for c, t, m in RESVECH_ITEMS),
            RESVECH_BANDS, WeightedSum(dict.fromkeys((c for c, _, _ in RESVECH_ITEMS), 1.0)), REF_RESVECH,
            CHRONIC_WOUNDS, media="none",
        ),
        ScoringSystem(
            "scovid", "Skin and COVID-19 symptom score", "Symptoms of a patient with skin manifestations of "
            "COVID-19: pain and pruritus on 0-10 rating scales, fever, cough, headache, myalgia or arthralgia, "
            "malaise, loss of taste or smell, shortness of breath and other skin problems 0-3 each; the score is "
            "their sum (0-44). Not a published score: the sum and its bands are dermq's own reading.",
            False,
            (_nrs("pain", "Pain", "0 no pain, 10 worst imaginable", integer=True, per_patient=False),
             _nrs("pruritus", "Pruritus", "0 no itch, 10 worst imaginable", integer=True, per_patient=False))
            + tuple(_clinician(c, t, 3, labels=GRADE3_LABELS, description=GRADES_0_3) for c, t in SCOVID_SYMPTOMS),
            SCOVID_BANDS, WeightedSum(dict.fromkeys(("pain", "pruritus", *(c for c, _ in SCOVID_SYMPTOMS)), 1.0)),
            REF_SCOVID, ANY_CONDITION, media="none",
        ),
    )


SYSTEMS: Mapping[str, ScoringSystem] = MappingProxyType({system.code: system for system in _catalogue()})
AUTOMATIC: tuple[str, ...] = tuple(code for code, system in SYSTEMS.items() if system.automatic)
MANUAL: tuple[str, ...] = tuple(code for code, system in SYSTEMS.items() if not system.automatic)


def _covers(pathology: str, icd11_code: str) -> bool:
    """ICD-11 MMS children extend their parent's code (EA90 -> EA90.4 -> EA90.40)."""
    return icd11_code.replace(".", "").startswith(pathology.replace(".", ""))


def systems_for_condition(icd11_code: str) -> list[ScoringSystem]:
    """The systems that apply to a condition or to one of its ancestors, in catalogue order."""
    return [system for system in SYSTEMS.values() if system.applies_to(icd11_code)]

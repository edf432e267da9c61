"""Catalogue of the severity scoring systems: items, formulas, bands and references.

Automatic systems (``a*``) score one imaged body site: the items the image can give come
from the AI (``source="ai"``, each fed by one image *sign*), the rest are clinical inputs
(``source="clinician"``). Manual systems take every item from the clinician. Formulas
live in ``pipeline.severity.formulas``; ``docs/severity.md`` explains every system and
cites its sources.

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
    SaltQuadrants,
    VasiSites,
    WeightedSum,
    region_item,
    round_half_up,
    step,
)

ItemSource = Literal["ai", "clinician"]
ItemKind = Literal["ordinal", "count", "percent", "number", "boolean"]
SignKind = Literal["ordinal", "count", "percent"]
ProblemKind = Literal["missing", "out_of_range", "not_integer", "not_a_number", "unknown_item"]

# Image signs the estimators produce: ordinal signs are a 0..1 severity level, count
# signs a number of lesions, percent signs a 0-100 fraction of the imaged area.
SIGN_KINDS: Mapping[str, SignKind] = MappingProxyType(
    {
        **dict.fromkeys(
            ("erythema", "induration", "desquamation", "excoriation", "lichenification",
             "oozing", "dryness", "oedema", "pustulation"),
            "ordinal",
        ),
        **dict.fromkeys(("wheals", "nodules", "abscesses", "tunnels", "acneLesions", "pustules"), "count"),
        **dict.fromkeys(("lesionArea", "hairLoss", "depigmentation"), "percent"),
    }
)
ALL_SOURCES: tuple[ItemSource, ...] = ("ai", "clinician")
MAX_COUNT = 999.0  # lesion counts above this are not plausible clinical input


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

    def __post_init__(self) -> None:
        if not self.minimum < self.maximum:
            raise ValueError(f"{self.code}: empty range")
        if (self.source == "ai") != (self.sign is not None):
            raise ValueError(f"{self.code}: AI items and only AI items name an image sign")
        if self.sign is not None:
            sign_kind = SIGN_KINDS[self.sign]
            if self.kind == "ordinal" and sign_kind != "ordinal" and self.grade_thresholds is None:
                raise ValueError(f"{self.code}: an ordinal item fed by a {sign_kind} sign needs grade_thresholds")

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
        value = measure
        if SIGN_KINDS[self.sign] == "ordinal":
            value = self.minimum + measure * (self.maximum - self.minimum)
        value = min(max(value, self.minimum), self.maximum)
        return float(round_half_up(value, 0)) if self.integer else value

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
    pathologies: tuple[str, ...]
    allowed_sites: frozenset[str] | None = None
    decimals: int = 0
    score_range: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        codes = [item.code for item in self.items]
        if len(set(codes)) != len(codes):
            raise ValueError(f"{self.code}: duplicate item codes")
        if self.automatic != any(item.source == "ai" for item in self.items):
            raise ValueError(f"{self.code}: automatic systems, and only they, have AI items")
        lowest = self.formula.local({item.code: item.minimum for item in self.items})
        highest = self.formula.local({item.code: item.maximum for item in self.items})
        score_range = (round_half_up(lowest, self.decimals), round_half_up(highest, self.decimals))
        object.__setattr__(self, "score_range", score_range)
        _check_bands(self.code, self.bands, self.score_range[0])

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
        """Whether the system scores this condition: one of its pathologies is the code or an ancestor."""
        code = icd11_code.strip().upper()
        return any(_covers(pathology, code) for pathology in self.pathologies)

    def allows_site(self, body_site: str) -> bool:
        """Whether an image of ``body_site`` can be scored with this system."""
        return body_site in BODY_SITES and (self.allowed_sites is None or body_site in self.allowed_sites)

    def check(self, values: Mapping[str, Any], *, sources: Collection[ItemSource] = ALL_SOURCES) -> list[ItemProblem]:
        """Problems with the values of the items that ``sources`` supply; empty when all is well.

        A code that is not an item of those sources is ``unknown_item``, so a client that
        sends an AI-supplied item as a clinical input is told so.
        """
        expected = [item for item in self.items if item.source in sources]
        problems = [p for item in expected if (p := _problem(item, values.get(item.code))) is not None]
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
        return round_half_up(self.formula.local(values), self.decimals)

    def contribution(self, values: Mapping[str, float], body_site: str | None = None) -> float:
        """This site's share of the whole-body score (its local score without regional weights)."""
        self._validate(values, body_site)
        return round_half_up(self.formula.contribution(values, body_site), self.decimals)

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
            self._validate(values, site)
        self._check_same_patient(sites)
        shares = self.formula.contributions(sites)
        return round_half_up(math.fsum(shares), self.decimals), [round_half_up(s, self.decimals) for s in shares]

    def interpret(self, score: float) -> Band:
        """The band of a score (after rounding it as reported)."""
        rounded = round_half_up(score, self.decimals)
        for band in self.bands:
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
            "allowedBodySites": sorted(self.allowed_sites) if self.allowed_sites is not None else None,
            "items": [item.questionnaire() for item in self.items],
            "bands": [
                {"category": b.category, "intensity": b.intensity, "lower": b.lower, "upper": b.upper}
                for b in self.bands
            ],
            "scoreRange": {"minimum": self.score_range[0], "maximum": self.score_range[1]},
            "decimals": self.decimals,
        }

    def _validate(self, values: Mapping[str, Any], body_site: str | None) -> None:
        if body_site is not None and not self.allows_site(body_site):
            raise ValueError(f"{self.code} cannot score body site {body_site!r}")
        problems = self.check(values)
        if problems:
            raise InvalidItems(self.code, problems)

    def _check_same_patient(self, sites: Sequence[tuple[str, Mapping[str, float]]]) -> None:
        for item in self.items:
            if item.per_patient and len({float(values[item.code]) for _, values in sites}) > 1:
                raise ValueError(f"{self.code}: {item.code} describes the patient and must be equal on every site")


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

PASI_SIGNS = (
    ("erythema", "Erythema"),
    ("induration", "Induration (plaque thickness)"),
    ("desquamation", "Desquamation (scaling)"),
)
EASI_SIGNS = (
    ("erythema", "Erythema"),
    ("oedema", "Oedema/papulation"),
    ("excoriation", "Excoriation"),
    ("lichenification", "Lichenification"),
)
SCORAD_SIGNS = (
    ("erythema", "Erythema"),
    ("oedema", "Oedema/papulation"),
    ("oozing", "Oozing/crusting"),
    ("excoriation", "Excoriation"),
    ("lichenification", "Lichenification"),
    ("dryness", "Dryness (of uninvolved skin)"),
)


def _ai(code: str, text: str, maximum: float, *, sign: str | None = None, kind: ItemKind = "ordinal",
        thresholds: tuple[float, ...] | None = None, description: str = "") -> Item:
    return Item(code, text, kind, 0.0, maximum, "ai", kind != "percent", sign or code, thresholds, description)


def _clinician(code: str, text: str, maximum: float, *, kind: ItemKind = "ordinal", integer: bool = True,
               minimum: float = 0.0, description: str = "", per_patient: bool = False,
               half_points: bool = False) -> Item:
    return Item(code, text, kind, minimum, maximum, "clinician", integer and not half_points, None, None,
                description, per_patient, half_points)


def _signs(signs: Sequence[tuple[str, str]], maximum: float, description: str, *, ai: bool) -> tuple[Item, ...]:
    if ai:
        return tuple(_ai(code, text, maximum, description=description) for code, text in signs)
    return tuple(_clinician(code, text, maximum, description=description) for code, text in signs)


def _boolean(code: str, text: str) -> Item:
    return _clinician(code, text, 1, kind="boolean", description="0 no, 1 yes")


def _regional_items(signs: Sequence[tuple[str, str]], maximum: float, description: str, *,
                    half_points: bool = False) -> tuple[Item, ...]:
    """The whole-body PASI/EASI form: every sign and the area for each of the four regions."""
    items: list[Item] = []
    for region in REGIONS:
        name = REGION_NAMES[region]
        items += [
            _clinician(region_item(region, code), f"{name}: {text}", maximum, half_points=half_points,
                       description=description)
            for code, text in signs
        ]
        items.append(
            _clinician(region_item(region, "area"), f"{name}: involved area (%)", 100, kind="percent",
                       integer=False, description=f"Share of the region with lesions, {AREA_SCORE_TEXT}.")
        )
    return tuple(items)


SITE_AREA = _clinician(
    "area", "Involved area of the region (%)", 100, kind="percent", integer=False,
    description="Share of the site's PASI/EASI region (head and neck, upper limbs, trunk, lower limbs) "
    f"covered by the lesions seen at this site, {AREA_SCORE_TEXT}. Sites of one region add up.",
)
AGE = _clinician("age", "Patient age (years)", 130, kind="number", integer=False, per_patient=True,
                 description="Patients under 8 use the child region weights (head 0.2, lower limbs 0.3).")
SCORAD_EXTENT = _clinician("extent", "Extent (% of body surface)", 100, kind="percent", integer=False, per_patient=True,
                           description="SCORAD A: body surface with eczema by the rule of nines.")
SCORAD_SYMPTOMS = tuple(
    _clinician(code, text, 10, kind="number", integer=False, per_patient=True,
               description="Visual analogue scale over the last 3 days/nights: 0 none, 10 worst imaginable.")
    for code, text in (("pruritus", "Pruritus (itch)"), ("sleeplessness", "Sleeplessness"))
)
WHEALS_TEXT = "0 none, 1 mild (< 20 wheals/24 h), 2 moderate (20-50), 3 intense (> 50 or large confluent areas)"
ITCH = _clinician("itch", "Itch", 3, description="0 none, 1 mild (present, not troublesome), 2 moderate "
                  "(troublesome, does not interfere with daily activity or sleep), 3 intense (interferes with them)")
IHS4_COUNTS = (("nodules", "Inflammatory nodules", 1), ("abscesses", "Abscesses", 2),
               ("tunnels", "Draining tunnels (fistulae/sinuses)", 4))
GPPGA_ITEMS = (
    ("erythema", "erythema", "Erythema",
     ("0 normal or post-inflammatory hyperpigmentation, 1 faint, 2 light red, 3 bright red, 4 deep fiery red")),
    ("pustulation", "pustulation", "Pustules",
     ("0 none visible, 1 low-density occasional small discrete pustules, 2 moderate density grouped discrete "
      "small pustules, 3 high-density pustules with some coalescence, 4 very high-density pustules with "
      "pustular lakes")),
    ("scaling", "desquamation", "Scaling/crusting",
     ("0 none, 1 superficial focal, 2 predominantly fine, 3 moderate, 4 severe covering almost all lesions")),
)
GAGS_REGIONS = (("forehead", "Forehead", 2), ("rightCheek", "Right cheek", 2), ("leftCheek", "Left cheek", 2),
                ("nose", "Nose", 1), ("chin", "Chin", 1), ("chestAndUpperBack", "Chest and upper back", 3))
DLQI_QUESTIONS = (
    ("symptoms", "Itchy, sore, painful or stinging skin"),
    ("embarrassment", "Embarrassment or self-consciousness"),
    ("shoppingHome", "Interference with shopping or looking after home or garden"),
    ("clothes", "Influence on the clothes worn"),
    ("socialLeisure", "Effect on social or leisure activities"),
    ("sport", "Difficulty with sport"),
    ("workStudy", "Prevented working or studying, or problems at work or study"),
    ("relationships", "Problems with partner, close friends or relatives"),
    ("sexualDifficulties", "Sexual difficulties"),
    ("treatment", "Problems caused by the treatment"),
)
SEVEN_POINT = (("changeInSize", "Change in size", 2), ("irregularShape", "Irregular shape", 2),
               ("irregularColour", "Irregular colour", 2), ("largestDiameter", "Largest diameter 7 mm or more", 1),
               ("inflammation", "Inflammation", 1), ("oozing", "Oozing", 1),
               ("changeInSensation", "Change in sensation (including itch)", 1))
PURE4_QUESTIONS = (("dactylitis", "Signs suggestive of dactylitis (a swollen 'sausage' finger or toe)"),
                   ("heelPain", "Inflammatory heel pain"), ("buttockPain", "Bilateral buttock pain"),
                   ("jointPainSwelling", "Peripheral joint pain with swelling (patients under 50)"))
UCT_QUESTIONS = (
    ("physicalSymptoms", "How much have you suffered from the physical symptoms (itch, wheals, swelling)?"),
    ("qualityOfLife", "How much was your quality of life affected by the urticaria?"),
    ("treatmentInsufficient", "How often was the treatment not enough to control the symptoms?"),
    ("overallControl", "Overall, how well have you had your urticaria under control?"),
)
UCT_TEXT = ("Last 4 weeks; answers score 0 (very much / very often / not at all controlled) "
            "to 4 (not at all / never / completely)")


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
GAGS_BANDS = _bands(("None", 0, 0), ("Mild", 1, 1), ("Moderate", 2, 19), ("Severe", 3, 31), ("Very severe", 3, 39))
DLQI_BANDS = _bands(("No effect", 0, 0), ("Small effect", 1, 2), ("Moderate effect", 2, 6),
                    ("Very large effect", 3, 11), ("Extremely large effect", 3, 21))
PURE4_BANDS = _bands(("Negative", 0, 0), ("Positive", 3, 1))
SEVEN_POINT_BANDS = _bands(("None", 0, 0), ("Low suspicion", 1, 1), ("Suspicious", 3, 3))
UCT_BANDS = _bands(("Poorly controlled", 3, 0), ("Well controlled", 1, 12), ("Complete control", 0, 16))


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
            "applied because VASI is the body surface fully depigmented; VASI has no published bands.")
REF_GAGS = ("Doshi A, Zaheer A, Stiller MJ. A comparison of current acne grading systems and proposal of a novel "
            "system. Int J Dermatol 1997;36:416-418.")
REF_DLQI = ("Finlay AY, Khan GK. Dermatology Life Quality Index (DLQI) - a simple practical measure for routine "
            "clinical use. Clin Exp Dermatol 1994;19:210-216. Bands: Hongbo Y et al. Translating the science of "
            "quality of life into practice: what do Dermatology Life Quality Index scores mean? "
            "J Invest Dermatol 2005;125:659-664.")
REF_PGA = ("Langley RGB, Ellis CN. Evaluating psoriasis with Psoriasis Area and Severity Index, Psoriasis Global "
           "Assessment, and Lattice System Physician's Global Assessment. J Am Acad Dermatol 2004;51:563-569.")
REF_PURE4 = ("Audureau E et al. Psoriatic arthritis screening by the dermatologist: development and first "
             "validation of the 'PURE-4 scale'. J Eur Acad Dermatol Venereol 2018;32(11).")
REF_SEVEN_POINT = ("MacKie RM. Clinical recognition of early invasive malignant melanoma. BMJ 1990;301:1005-1006; "
                   "Walter FM et al. Using the 7-point checklist as a diagnostic aid for pigmented skin lesions in "
                   "general practice. Br J Gen Pract 2013;63:e345-e353; NICE guideline NG12 (2015): refer at 3 "
                   "points or more.")
REF_UCT = ("Weller K et al. Development and validation of the Urticaria Control Test: a patient-reported outcome "
           "instrument for assessing urticaria control. J Allergy Clin Immunol 2014;133:1365-1372.")

PSORIASIS, GPP, ATOPIC_ECZEMA, URTICARIA, SPONTANEOUS_URTICARIA = "EA90", "EA90.40", "EA80", "EB00", "EB00.0"
HS, ACNE, ALOPECIA_AREATA, VITILIGO = "ED92.0", "ED80", "ED70.2", "ED63.0"
PIGMENTED_LESIONS = ("2C30", "2E63", "2F20")
# DLQI is disease-independent; it is offered for the chronic skin diseases of the catalogue.
DLQI_PATHOLOGIES = (PSORIASIS, ATOPIC_ECZEMA, "EA81", "EA89", "EK00", "EK02", "EA91", URTICARIA, HS, ACNE,
                    "ED90.0", ALOPECIA_AREATA, VITILIGO, "EB40", "EB41", "EB60")
FACE_SIDES = frozenset({"headLeft", "headRight"})


def _pasi_weights(age: float | None) -> Mapping[Region, float]:
    return REGION_WEIGHTS_PASI


def _easi_weights(age: float | None) -> Mapping[Region, float]:
    if age is None:
        raise ValueError("EASI weights depend on the patient's age")
    return easi_region_weights(age)


def _ihs4_counts(source: ItemSource) -> tuple[Item, ...]:
    if source == "ai":
        return tuple(_ai(code, text, MAX_COUNT, kind="count") for code, text, _ in IHS4_COUNTS)
    return tuple(_clinician(code, text, MAX_COUNT, kind="count") for code, text, _ in IHS4_COUNTS)


def _catalogue() -> tuple[ScoringSystem, ...]:
    """Every scoring system, automatic ones first (the order of ``SYSTEMS``)."""
    pasi_codes = tuple(code for code, _ in PASI_SIGNS)
    easi_codes = tuple(code for code, _ in EASI_SIGNS)
    # SCORAD = A/5 + 7B/2 + C
    scorad_weights = {"extent": 0.2, **dict.fromkeys((c for c, _ in SCORAD_SIGNS), 3.5),
                      **dict.fromkeys((i.code for i in SCORAD_SYMPTOMS), 1.0)}
    ihs4_weights = {code: w for code, _, w in IHS4_COUNTS}
    gppga = WeightedSum(dict.fromkeys((c for c, *_ in GPPGA_ITEMS), 1.0), scale=1 / 3, grades=(1.5, 2.5, 3.5))
    uas = WeightedSum({"wheals": 1.0, "itch": 1.0})
    return (
        ScoringSystem(
            "apasi", "Automatic PASI (one body site)",
            "Psoriasis Area and Severity Index of an imaged site: erythema, induration and desquamation from the "
            "image, involved area of the site's region from the clinician.",
            True, _signs(PASI_SIGNS, 4, GRADES_0_4, ai=True) + (SITE_AREA,), PASI_BANDS,
            RegionalSites(pasi_codes, _pasi_weights), REF_PASI, (PSORIASIS,), decimals=1,
        ),
        ScoringSystem(
            "aeasi", "Automatic EASI (one body site)",
            "Eczema Area and Severity Index of an imaged site: erythema, oedema/papulation, excoriation and "
            "lichenification from the image; involved area and patient age from the clinician.",
            True, _signs(EASI_SIGNS, 3, GRADES_0_3, ai=True) + (SITE_AREA, AGE), EASI_BANDS,
            RegionalSites(easi_codes, _easi_weights, age="age"), REF_EASI, (ATOPIC_ECZEMA,), decimals=1,
        ),
        ScoringSystem(
            "ascorad", "Automatic SCORAD",
            "SCORAD with the six intensity signs (B) read from an image of a representative lesion; extent (A) "
            "and the itch and sleeplessness scales (C) from the clinician. SCORAD = A/5 + 7B/2 + C.",
            True, (SCORAD_EXTENT,) + _signs(SCORAD_SIGNS, 3, GRADES_0_3, ai=True) + SCORAD_SYMPTOMS, SCORAD_BANDS,
            WeightedSum(scorad_weights), REF_SCORAD, (ATOPIC_ECZEMA,), decimals=1,
        ),
        ScoringSystem(
            "auas", "Automatic UAS (daily urticaria activity)",
            "Daily Urticaria Activity Score: the wheal grade from the wheals counted in the image, itch from the "
            "patient. UAS = wheals + itch.",
            True, (_ai("wheals", "Wheals", 3, thresholds=(1, 20, 51), description=WHEALS_TEXT), ITCH), UAS_BANDS,
            uas, REF_UAS, (URTICARIA,),
        ),
        ScoringSystem(
            "aihs4", "Automatic IHS4 (one body site)",
            "International Hidradenitis Suppurativa Severity Score of the lesions counted in the image: "
            "nodules + 2 x abscesses + 4 x draining tunnels. Sites add up.",
            True, _ihs4_counts("ai"), IHS4_BANDS, WeightedSum(ihs4_weights, supports_global=True), REF_IHS4, (HS,),
        ),
        ScoringSystem(
            "aladin", "Automatic acne lesion count",
            "Inflammatory acne lesions (papules and pustules) counted on an image of one side of the face, "
            "graded with the half-face count bands of Hayashi et al.",
            True, (_ai("acneLesions", "Inflammatory lesions on one side of the face", MAX_COUNT, kind="count"),),
            ACNE_COUNT_BANDS, WeightedSum({"acneLesions": 1.0}), REF_ACNE_COUNT, (ACNE,), FACE_SIDES,
        ),
        ScoringSystem(
            "agppga", "Automatic GPPGA",
            "Generalized Pustular Psoriasis Physician Global Assessment from the image: the mean of erythema, "
            "pustules and scaling/crusting (0-4) graded 0 (mean 0), 1 (< 1.5), 2 (< 2.5), 3 (< 3.5), 4.",
            True, tuple(_ai(c, t, 4, sign=s, description=d) for c, s, t, d in GPPGA_ITEMS), GLOBAL_ASSESSMENT_BANDS,
            gppga, REF_GPPGA, (GPP,),
        ),
        ScoringSystem(
            "asalt", "Automatic SALT (one scalp quadrant)",
            "Severity of Alopecia Tool: hair loss of the imaged scalp quadrant from the image. Quadrants weigh "
            "vertex 40 %, left 18 %, right 18 %, back 24 %.",
            True, (_ai("hairLoss", "Hair loss in the quadrant (%)", 100, kind="percent"),), SALT_BANDS,
            SaltQuadrants(), REF_SALT, (ALOPECIA_AREATA,), HAIR_BEARING_SITES, decimals=1,
        ),
        ScoringSystem(
            "avasi", "Automatic VASI (one body site)",
            "Vitiligo Area Scoring Index of an imaged site: the degree of depigmentation from the image, rounded "
            "to the nearest VASI level (0, 10, 25, 50, 75, 90, 100 %), times the involved hand units.",
            True,
            (_ai("depigmentation", "Depigmentation of the involved skin (%)", 100, kind="percent"),
             _clinician("handUnits", "Involved area (hand units)", 100, kind="number", integer=False,
                        description="Vitiligo at this site in hand units (one hand, palm and fingers, is about "
                        "1 % of body surface).")),
            VASI_BANDS, VasiSites(), REF_VASI, (VITILIGO,), decimals=2,
        ),
        ScoringSystem(
            "pasi", "PASI", "Psoriasis Area and Severity Index, whole-body form with the four regions.",
            False, _regional_items(PASI_SIGNS, 4, GRADES_0_4), PASI_BANDS,
            RegionalForm(pasi_codes, _pasi_weights), REF_PASI, (PSORIASIS,), decimals=1,
        ),
        ScoringSystem(
            "easi", "EASI", "Eczema Area and Severity Index, whole-body form with the four regions and the "
            "patient's age (region weights differ under 8 years).",
            False, _regional_items(EASI_SIGNS, 3, f"{GRADES_0_3}; half points from 1 up (1.5, 2.5)",
                                   half_points=True) + (AGE,), EASI_BANDS,
            RegionalForm(easi_codes, _easi_weights, age="age"), REF_EASI, (ATOPIC_ECZEMA,), decimals=1,
        ),
        ScoringSystem(
            "scorad", "SCORAD", "SCORing Atopic Dermatitis: A/5 + 7B/2 + C.",
            False, (SCORAD_EXTENT,) + _signs(SCORAD_SIGNS, 3, GRADES_0_3, ai=False) + SCORAD_SYMPTOMS,
            SCORAD_BANDS, WeightedSum(scorad_weights), REF_SCORAD, (ATOPIC_ECZEMA,), decimals=1,
        ),
        ScoringSystem(
            "uas", "UAS (daily urticaria activity)", "Urticaria Activity Score of one day: wheals + itch.",
            False, (_clinician("wheals", "Wheals", 3, description=WHEALS_TEXT), ITCH), UAS_BANDS, uas, REF_UAS,
            (URTICARIA,),
        ),
        ScoringSystem(
            "uas7", "UAS7", "Urticaria Activity Score summed over 7 consecutive days (each day 0-6).",
            False,
            tuple(_clinician(f"day{d}", f"Day {d} UAS (wheals + itch)", 6) for d in range(1, 8)), UAS7_BANDS,
            WeightedSum(dict.fromkeys((f"day{d}" for d in range(1, 8)), 1.0)), f"{REF_UAS} Bands: {REF_UAS7_BANDS}",
            (SPONTANEOUS_URTICARIA,),
        ),
        ScoringSystem(
            "ihs4", "IHS4", "International Hidradenitis Suppurativa Severity Score System: "
            "nodules + 2 x abscesses + 4 x draining tunnels over the whole body.",
            False, _ihs4_counts("clinician"), IHS4_BANDS, WeightedSum(ihs4_weights), REF_IHS4, (HS,),
        ),
        ScoringSystem(
            "gags", "GAGS", "Global Acne Grading System: each of six regions graded by its most severe lesion "
            "(0 none, 1 comedone, 2 papule, 3 pustule, 4 nodule) times the region factor.",
            False,
            tuple(_clinician(c, t, 4, description=f"Region factor {w}: 0 none, 1 comedones, 2 papules, 3 pustules, "
                             "4 nodules") for c, t, w in GAGS_REGIONS),
            GAGS_BANDS, WeightedSum({c: float(w) for c, _, w in GAGS_REGIONS}), REF_GAGS, (ACNE,),
        ),
        ScoringSystem(
            "dlqi", "DLQI", "Dermatology Life Quality Index: ten questions about the last week, each 0-3.",
            False,
            tuple(_clinician(c, t, 3, description="0 not at all or not relevant, 1 a little, 2 a lot, 3 very much "
                             "(work/study: prevented = 3)") for c, t in DLQI_QUESTIONS),
            DLQI_BANDS, WeightedSum(dict.fromkeys((c for c, _ in DLQI_QUESTIONS), 1.0)), REF_DLQI, DLQI_PATHOLOGIES,
        ),
        ScoringSystem(
            "pga", "PGA", "Static Physician Global Assessment of psoriasis, 0 clear to 4 severe.",
            False, (_clinician("pga", "Physician Global Assessment", 4,
                               description="0 clear, 1 almost clear, 2 mild, 3 moderate, 4 severe"),),
            GLOBAL_ASSESSMENT_BANDS, WeightedSum({"pga": 1.0}), REF_PGA, (PSORIASIS,),
        ),
        ScoringSystem(
            "pure4", "PURE-4", "Psoriatic arthritis screening by the dermatologist: four yes/no items; one or more "
            "positive answers warrant a rheumatology referral.",
            False, tuple(_boolean(c, t) for c, t in PURE4_QUESTIONS), PURE4_BANDS,
            WeightedSum(dict.fromkeys((c for c, _ in PURE4_QUESTIONS), 1.0)), REF_PURE4, (PSORIASIS,),
        ),
        ScoringSystem(
            "sevenPc", "7-point checklist", "Weighted 7-point checklist for pigmented lesions: three major "
            "features score 2, four minor features score 1; 3 or more warrants urgent referral.",
            False, tuple(_boolean(c, t) for c, t, _ in SEVEN_POINT), SEVEN_POINT_BANDS,
            WeightedSum({c: float(w) for c, _, w in SEVEN_POINT}), REF_SEVEN_POINT, PIGMENTED_LESIONS,
        ),
        ScoringSystem(
            "uct", "UCT", "Urticaria Control Test: four questions about the last 4 weeks, 0-4 each; "
            "below 12 the urticaria is poorly controlled.",
            False, tuple(_clinician(c, t, 4, description=UCT_TEXT) for c, t in UCT_QUESTIONS), UCT_BANDS,
            WeightedSum(dict.fromkeys((c for c, _ in UCT_QUESTIONS), 1.0)), REF_UCT, (URTICARIA,),
        ),
        ScoringSystem(
            "salt", "SALT", "Severity of Alopecia Tool: hair loss (%) of the four scalp quadrants, weighted "
            "vertex 40 %, left 18 %, right 18 %, back 24 %.",
            False,
            tuple(_clinician(region_item(q, "hairLoss"), f"Hair loss, {q} (%)", 100, kind="percent", integer=False)
                  for q in SALT_QUADRANT_WEIGHTS),
            SALT_BANDS, WeightedSum({region_item(q, "hairLoss"): w / 100 for q, w in SALT_QUADRANT_WEIGHTS.items()}),
            REF_SALT, (ALOPECIA_AREATA,), HAIR_BEARING_SITES, decimals=1,
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

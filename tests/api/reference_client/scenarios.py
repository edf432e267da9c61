"""The reference SDK's live test scenarios, as data (digest: /work/shared/reference-sdk-contract.md).

Request bodies are built exactly as the reference client serialises them: JSON with zero fractions
kept (a float argument stays `60.0`), `knownCondition.conclusion` as `{text, coding}` with the coding
keys in the order code, display, system, systemDisplay, version (the live tests) or the order of the
tests' hand-built missing-field bodies, `scoringSystem` keyed by the one system, systems without
client inputs serialised as `{}`.

Expectations are tagged by what they test: values the AI estimates from the (stand-in) photo are
`clinical`; what the client needs to parse and the tests assert about shape, texts, codes, echoes of
client inputs and statuses is `contract`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

ICD = {"system": "https://icd.who.int/browse/2025-01/mms/en", "systemDisplay": "ICD-11", "version": "2025-01"}
AI_CONF_TEXT = "Confidence of the AI model on prediction"
GSC_TEXT = "Contribution of the body zone score to the full-body score"
HEATMAP_TITLE = "Heat map showing which regions of the image the AI focuses its attention to predict this class."
DIAG_CONFIDENCE_TEXTS = {
    "aiConfidence": "AI model confidence in the image being dermatological",
    "aiConfidenceClinical": "AI model confidence in identifying the image's modality as clinical",
    "aiConfidenceDermoscopic": "AI model confidence in identifying the image's modality as dermoscopic",
}


# --- known conditions ---
@dataclass(frozen=True)
class Condition:
    code: str | None
    display: str | None
    text: str

    def sdk_json(self) -> dict[str, Any]:
        """`KnownCondition(Code::fromJson(...))` serialised: text first, coding list or null."""
        coding = None if self.code is None else [{"code": self.code, "display": self.display, **ICD}]
        return {"conclusion": {"text": self.text, "coding": coding}}

    def handbuilt_json(self) -> dict[str, Any]:
        """The missing-field tests' hand-written body (system, systemDisplay, version, code, display; then text)."""
        return {"conclusion": {"coding": [{**ICD, "code": self.code, "display": self.display}], "text": self.text}}


PSORIASIS = Condition("EA90", "Psoriasis", "Psoriasis")
ECZEMA = Condition("EA89", "Generalised eczematous dermatitis of unspecified type", "Eczematous dermatitis")
URTICARIA = Condition("EB05", "Urticaria of unspecified type", "Urticaria")
HS = Condition("ED92.0", "Hidradenitis suppurativa", "Hidradenitis suppurativa")
ACNE = Condition("ED80.Z", "Acne", "Acne")
GPP = Condition("EA90.40", "Generalised pustular psoriasis", "Generalised pustular psoriasis")
ALOPECIA = Condition("ED70", "Alopecia or hair loss", "Alopecia")
VITILIGO = Condition("ED63.0", "Vitiligo", "Vitiligo")
ULCER = Condition("EH90.Z", "Pressure ulcer of unspecified grade", "Pressure ulcer")
NON_SPECIFIC = Condition(None, None, "Non-specific finding")
NAEVUS = Condition("2F20.Z", "Melanocytic naevus, unspecified", "Melanocytic naevus")
MELANOMA = Condition("2C30", "Melanoma of skin", "Cutaneous melanoma")


# --- expectations ---
@dataclass(frozen=True)
class Extra:
    """An expected `additionalData` entry of an item."""

    key: str
    text: str
    kind: str | None = "percentage"  # "percentage" (0-100), "scalar" (>= 0) or None (no range asserted)
    interpretation: str | None = None  # asserted only when given (an AI reading: clinical)


def ai_conf(kind: str | None = "percentage") -> Extra:
    return Extra("aiConfidence", AI_CONF_TEXT, kind)


@dataclass(frozen=True)
class Item:
    key: str
    text: str
    value: Any = None  # expected value; None: no equality asserted
    at_least: float | None = None  # `value >= at_least`
    client: bool = False  # the client supplied it: its value is an echo (contract) and it carries no aiConfidence
    value_category: str | None = None  # override the category of the value check (e.g. "spec-deviation")
    interpretation: str | None = None  # None: must be absent or null
    extras: tuple[Extra, ...] = ()


@dataclass(frozen=True)
class Bound:
    op: str  # "<=", ">=", ">", "=="
    limit: float

    def holds(self, value: float) -> bool:
        return {"<=": value <= self.limit, ">=": value >= self.limit, ">": value > self.limit,
                "==": value == self.limit}[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.limit:g}"


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # local | manual | missing | data-uri | diagnosis | login | device
    group: str = ""
    # request
    path: str = ""
    system: str | None = None
    image: str | None = None
    images: tuple[str, ...] = ()
    condition: Condition | None = None
    body_site: str = "armLeft"
    answers: dict[str, Any] | None = None  # questionnaireResponse.item; None serialises as {}
    # expectations (local / manual)
    items: tuple[Item, ...] | None = ()  # None: `item` must be null
    score: Bound | None = None
    category: str | None = None
    intensity: int | None = None
    gsc: Bound | None = None
    expect_gsc: bool = False
    attachments: dict[str, str] | None = None  # key -> title; None: media.attachment absent or null
    detections: dict[str, str] | None = None  # code -> text
    expected_status: int = 200
    live_manual: bool = False  # a live manual test with exact score/category/intensity
    # missing-field / data-uri
    body: dict[str, Any] | None = None
    remove: str | None = None
    loc: tuple[Any, ...] = ()
    # diagnosis
    top_condition: Condition | None = None
    failed_media: int | None = None
    # login
    username: str | None = None
    password: str | None = None


def scoring_system(system: str, answers: dict[str, Any] | None) -> dict[str, Any]:
    return {system: {} if answers is None else {"questionnaireResponse": {"item": dict(answers)}}}


# --- 3.1 automatic local ---
LESION_MASKS = {"maskRaw": "Lesion mask raw", "maskBinary": "Lesion mask binary", "segmentation": "Segmentation"}
AWOSI_STEMS = [("erythema", "Erythema"), ("wound", "Wound"),
               ("angiogenesisAndGranulatedTissue", "Angiogenesis and granulated tissue"),
               ("biofilmAndSlough", "Biofilm and slough"), ("necrosis", "Necrosis"), ("maceration", "Maceration"),
               ("orthopedic", "Orthopedic"), ("boneCartilageOrTendon", "Bone cartilage or tendon")]
PRESENCE = Extra("presenceProbability", "Probability of the item being present in the wound as assessed by AI.")
AWOSI_BOOLEANS = [
    ("bordersDamaged", False, "Borders: Damaged"), ("bordersDelimited", True, "Borders: Delimited"),
    ("bordersDiffused", False, "Borders: Diffused"), ("bordersThickened", True, "Borders: Thickened"),
    ("bordersIndistinguishable", False, "Borders: Indistinguishable"),
    ("perilesionalErythema", True, "Perilesional erythema"), ("perilesionalMaceration", True, "Perilesional maceration"),
    ("biofilmCompatibleTissue", True, "Biofilm-compatible tissue"),
    ("affectedTissueBoneAndOrAdjacent", False, "Affected tissues: Bone and/or adjacent tissues"),
    ("affectedTissueDermisEpidermis", True, "Affected tissues: Dermis-epidermis"),
    ("affectedTissueMuscle", True, "Affected tissues: Muscle"),
    ("affectedTissueSubcutaneous", True, "Affected tissues: Subcutaneous tissue"),
    ("affectedTissueHealedSkin", False, "Affected tissues: Intact scarred skin"),
    ("exudationFibrinous", True, "Type of exudation: Fibrinous"), ("exudationPurulent", False, "Type of exudation: Purulent"),
    ("exudationBloody", False, "Type of exudation: Bloody"), ("exudationSerous", True, "Type of exudation: Serous"),
    ("exudationGreenish", False, "Type of exudation: Greenish"),
    ("tissueInWoundBedScarred", False, "Type of tissue in the wound bed: Closed/Scarred"),
    ("tissueInWoundBedSlough", True, "Type of tissue in the wound bed: Slough"),
    ("tissueInWoundBedNecrotic", False, "Type of tissue in the wound bed: Necrotic"),
    ("tissueInWoundBedGranulation", True, "Type of tissue in the wound bed: Granulation"),
    ("tissueInWoundBedEpithelia", False, "Type of tissue in the wound bed: Epithelia"),
]


def _local(system: str, image: str, condition: Condition, answers: dict[str, Any] | None, **kw: Any) -> Scenario:
    return Scenario(name=f"local[{system}]", kind="local", group="local", path="severity-assessment/automatic/local",
                    system=system, image=image, condition=condition, answers=answers, **kw)


LOCAL: list[Scenario] = [
    _local("apasi", "psoriasis_01.jpg", PSORIASIS, {"surface": 4}, items=(
        # The reference suite sends an area score 4 and expects it back; the docs read `surface` as a
        # percentage, so 4 % is reported as the PASI area score 1 (contract) and the SDK's 4 is a spec deviation.
        Item("surface", "Surface area score", value=1, client=True),
        Item("desquamation", "Desquamation", 3, extras=(ai_conf(),)),
        Item("erythema", "Erythema", 3, extras=(ai_conf(),)),
        Item("induration", "Induration", 3, extras=(ai_conf(),)),
    ), score=Bound("<=", 8), category="Severe", intensity=3, gsc=Bound("<=", 10), expect_gsc=True,
        attachments=LESION_MASKS),
    _local("aeasi", "dermatitis.jpg", ECZEMA, {"surface": 60.0, "patientAge": 40}, items=(
        Item("surface", "Surface area score", 4, client=True),
        Item("redness", "Redness", 2, extras=(ai_conf(),)),
        Item("thickness", "Thickness", 2, extras=(ai_conf(),)),
        Item("scratching", "Scratching", 0, extras=(ai_conf(),)),
        Item("lichenification", "Lichenification", 0, extras=(ai_conf(),)),
    ), score=Bound(">", 3), category="Mild", intensity=1, gsc=Bound(">=", 3), expect_gsc=True,
        attachments=LESION_MASKS),
    _local("ascorad", "dermatitis.jpg", ECZEMA, {"surface": 60.0, "pruritus": 5, "sleeplessness": 7}, items=(
        Item("surface", "Percentage of the body zone's surface area affected by the lesion.", 60, client=True,
             extras=(Extra("surfaceAreaOverBsa", "Affected surface area as a percentage of the whole body", "scalar"),)),
        Item("crusting", "Crusting", 2, extras=(ai_conf(),)),
        Item("dryness", "Dryness", 1, extras=(ai_conf(),)),
        Item("erythema", "Erythema", 2, extras=(ai_conf(),)),
        Item("excoriation", "Excoriation", 0, extras=(ai_conf(),)),
        Item("lichenification", "Lichenification", 0, extras=(ai_conf(),)),
        Item("swelling", "Swelling", 2, extras=(ai_conf(),)),
        Item("pruritus", "Pruritus", 5, client=True),
        Item("sleeplessness", "Sleeplessness", 7, client=True),
    ), score=Bound(">", 37), category="Moderate", intensity=2, attachments=LESION_MASKS),
    _local("auas", "urticaria.jpg", URTICARIA, {"pruritus": 3}, items=(
        Item("wheals", "Extent or number of wheals (hives) in the last 24 hours, scored from 0 (no wheals) to 3 "
             "(many or large confluent wheals).", 2, interpretation="Moderate (20-50)",
             extras=(Extra("whealsCount", "Number of hives/wheals", "scalar"),)),
        Item("pruritus", "Severity of itch in the last 24 hours, scored from 0 (no itch) to 3 (severe itch).", 3,
             client=True, interpretation="Severe (interferes with normal daily activity or sleep)"),
    ), score=Bound("==", 5), category="Intense", intensity=3,
        attachments={"annotation": "Annotated image with bounding boxes highlighting urticaria wheals"},
        detections={"wheal": "Wheal"}),
    _local("aihs4", "hidradenitis.jpg", HS, None, items=(
        Item("abscess", "The number of abscesses identified during clinical examination.", 0),
        Item("drainingTunnel", "The number of draining tunnels identified during clinical examination.", 3),
        Item("nodule", "The number of nodules identified during clinical examination.", 8),
    ), score=Bound(">=", 20), category="Intense", intensity=3,
        attachments={"annotation": "Annotated image with bounding boxes highlighting HS inflammatory lesions"},
        detections={"nodule": "Nodule", "drainingTunnel": "Draining tunnel", "abscess": "Abscess"}),
    _local("aladin", "acne.jpg", ACNE, None, items=(
        Item("acne", "Number of acne lesions", 33, interpretation="Moderate",
             extras=(Extra("acneDensity", "Acne density score", "percentage", interpretation="Very low"),)),
    ), score=Bound(">=", 30), category="Grade 4", intensity=2,
        attachments={"annotation": "Annotated image with bounding boxes highlighting acne pimples"},
        detections={"acne": "Acne"}),
    _local("agppga", "pustular_psoriasis.jpg", GPP, None, items=(
        Item("erythema", "Erythema", 3, extras=(ai_conf(),)),
        Item("desquamation", "Desquamation", 2, extras=(ai_conf(),)),
        Item("pustulation", "Pustulation", 3, extras=(ai_conf(),)),
    ), score=Bound(">=", 2), category="Moderate", intensity=2, attachments=None),
    _local("asalt", "alopecia.jpg", ALOPECIA, None, body_site="headLeft", items=None, score=Bound(">=", 7),
           category="Moderate", intensity=2, gsc=Bound("<=", 10), expect_gsc=True, attachments={
               "hairMaskRaw": "Hair mask raw", "hairMaskBinary": "Hair mask binary",
               "baldnessMaskRaw": "Baldness mask raw", "baldnessMaskBinary": "Baldness mask binary",
               "segmentation": "Segmentation"}),
    Scenario(name="local[asalt armLeft]", kind="local", group="local", path="severity-assessment/automatic/local",
             system="asalt", image="alopecia.jpg", condition=ALOPECIA, answers=None, body_site="armLeft",
             expected_status=422),
    _local("avasi", "vitiligo.jpg", VITILIGO, None, items=None, score=Bound(">=", 40), category="Moderate",
           intensity=2, attachments={
               "skinMaskRaw": "Skin mask raw", "skinMaskBinary": "Skin mask binary",
               "depigmentationMaskRaw": "Depigmentation mask raw",
               "depigmentationMaskBinary": "Depigmentation mask binary", "segmentation": "Segmentation"}),
    _local("awosi", "ulcera.jpg", ULCER, None, body_site="headLeft", items=(
        Item("erythema", "Erythema", 0, extras=(ai_conf(),)),
        *(Item(key, text, value, extras=(PRESENCE,)) for key, value, text in AWOSI_BOOLEANS),
    ), score=Bound(">=", 10), category="Stage 4", intensity=3, attachments={
        f"{stem}Mask{kind}": f"{label} mask {kind.lower()}" for stem, label in AWOSI_STEMS for kind in ("Raw", "Binary")}),
    _local("nsil", "non_specific.jpg", NON_SPECIFIC, None, items=(
        Item("dryness", "Dryness", at_least=1, extras=(ai_conf(None),)),
        Item("erythema", "Erythema", 0, extras=(ai_conf(None),)),
        Item("inflammations", "Inflammations", 0,
             extras=(Extra("inflammatoryLesionCount", "Number of inflammatory lesions", "scalar"),)),
    ), score=Bound(">=", 1), category="Mild", intensity=1,
        attachments={"annotation": "Annotated image with bounding boxes highlighting inflammatory lesions"}),
]

# The apasi surface item as the reference suite expects it (sent 4, returned 4): recorded as a spec deviation.
APASI_SDK_SURFACE = 4


# --- 3.2 manual ---
MANUAL_ITEMS: dict[str, list[str]] = {
    "dlqi": [f"question{i}" for i in range(1, 11)],
    "pure4": [f"question{i}" for i in range(1, 5)],
    "sevenPc": ["changeInSize", "irregularPigmentation", "irregularBorder", "inflammation", "largerThanOtherLesions",
                "itchOrAlteredSensation", "crustingOrBleeding"],
    "pasi": ["surface", "erythema", "induration", "desquamation"],
    "scorad": ["surface", "erythema", "swelling", "crusting", "excoriation", "lichenification", "dryness",
               "pruritus", "sleeplessness"],
    "uas": ["pruritus", "wheals"],
    "uct": ["manifestations", "qualityOfLife", "treatmentNotEnough", "overallUnderControl"],
    "gags": ["forehead", "rightCheek", "leftCheek", "nose", "chin", "chestAndUpperBack"],
    "pga": ["erythema", "desquamation", "induration"],
    "ihs4": ["nodule", "abscess", "drainingTunnel"],
    "resvech": ["woundDimensions", "tissues", "edges", "tissueInWoundBed", "exudate", "frequencyOfPain",
                "macerationAroundWound", "tunneling", "increasingPain", "erythemaAroundWound", "edemaAroundWound",
                "temperatureRise", "increasingExudate", "purulentExudate", "tissueFriableOrBleedsEasily",
                "stationaryWound", "biofilmCompatibleTissue", "odor", "hypergranulation", "increasingWound",
                "satelliteLesions", "tissuePaleness"],
    "scovid": ["pain", "pruritus", "fever", "cough", "cephalea", "myalgiaOrArthralgia", "malaise",
               "lossOfTasteOrOlfactory", "shortnessOfBreath", "otherSkinProblems"],
}
MANUAL_VALUES: dict[str, tuple[Any, ...]] = {
    "dlqi": (1, 2, 3, 1, 2, 3, 1, 2, 3, 1), "pure4": (1, 0, 1, 0), "sevenPc": (1, 1, 0, 1, 0, 0, 1),
    "pasi": (5, 1, 2, 3), "scorad": (25.0, 0, 1, 2, 3, 0, 1, 5, 6), "uas": (3, 2), "uct": (1, 2, 0, 4),
    "gags": (0, 1, 2, 3, 4, 1), "pga": (0, 1, 1), "ihs4": (5, 4, 2),
    "resvech": (0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 1, 4, 0, 1, 2, 3, 4, 0, 1),
    "scovid": (8, 10, 0, 1, 2, 3, 0, 1, 2, 3),
}


def manual_answers(system: str) -> dict[str, Any]:
    return dict(zip(MANUAL_ITEMS[system], MANUAL_VALUES[system], strict=True))


def _manual(system: str, image: str, condition: Condition, live: bool, **kw: Any) -> Scenario:
    return Scenario(name=f"manual[{system}]", kind="manual", group="manual" if live else "manual-serialisation",
                    path="severity-assessment/manual", system=system, image=image, condition=condition,
                    answers=manual_answers(system), live_manual=live, **kw)


MANUAL: list[Scenario] = [
    _manual("dlqi", "nevus.jpg", NAEVUS, True, score=Bound("==", 19), category="Very large effect", intensity=3),
    _manual("pure4", "psoriasis_01.jpg", PSORIASIS, True, score=Bound("==", 2), category="Positive", intensity=3),
    _manual("sevenPc", "nevus.jpg", NAEVUS, True, score=Bound("==", 6), category="High risk", intensity=3),
    # No live test in the reference suite: serialised as the client does and sent to the manual endpoint.
    _manual("pasi", "psoriasis_01.jpg", PSORIASIS, False),
    _manual("scorad", "dermatitis.jpg", ECZEMA, False),
    _manual("uas", "urticaria.jpg", URTICARIA, False),
    _manual("uct", "urticaria.jpg", URTICARIA, False),
    _manual("gags", "acne.jpg", ACNE, False),
    _manual("pga", "psoriasis_01.jpg", PSORIASIS, False),
    _manual("ihs4", "hidradenitis.jpg", HS, False),
    _manual("resvech", "ulcera.jpg", ULCER, False),
    _manual("scovid", "nevus.jpg", NAEVUS, False),
]


# --- 5. missing fields ---
GENERIC_MISSING = [  # (dot path, loc after "body"); "payload.<0.>contentAttachment.data" differs by endpoint
    ("bodySite", ("bodySite",)),
    ("@payload", None),
    ("knownCondition.conclusion.coding.0.system", ("knownCondition", "conclusion", "coding", 0, "system")),
    ("knownCondition.conclusion.coding.0.systemDisplay", ("knownCondition", "conclusion", "coding", 0, "systemDisplay")),
    ("knownCondition.conclusion.coding.0.code", ("knownCondition", "conclusion", "coding", 0, "code")),
    ("knownCondition.conclusion.coding.0.display", ("knownCondition", "conclusion", "coding", 0, "display")),
    ("knownCondition.conclusion.text", ("knownCondition", "conclusion", "text")),
]
# buildValidArguments of each local test: (image, condition, body site, questionnaire item or None)
LOCAL_VALID_BODIES: dict[str, tuple[str, Condition, str, dict[str, Any] | None]] = {
    "apasi": ("psoriasis_01.jpg", PSORIASIS, "armLeft", {"surface": 5}),
    "aeasi": ("dermatitis.jpg", ECZEMA, "armLeft", {"surface": 40.0, "patientAge": 30}),
    "ascorad": ("dermatitis.jpg", ECZEMA, "armLeft", {"surface": 50.0, "pruritus": 7, "sleeplessness": 3}),
    "auas": ("urticaria.jpg", URTICARIA, "armLeft", {"pruritus": 3}),
    "aihs4": ("hidradenitis.jpg", HS, "armLeft", None),
    "aladin": ("acne.jpg", ACNE, "headFront", None),
    "agppga": ("pustular_psoriasis.jpg", GPP, "armLeft", None),
    "asalt": ("alopecia.jpg", ALOPECIA, "headLeft", None),
    "avasi": ("vitiligo.jpg", VITILIGO, "armLeft", None),
    "awosi": ("vitiligo.jpg", ULCER, "headLeft", None),
    "nsil": ("non_specific.jpg", ECZEMA, "armRight", None),
}
LOCAL_SPECIFIC_MISSING = {"apasi": ["surface"], "aeasi": ["surface", "patientAge"],
                          "ascorad": ["surface", "pruritus", "sleeplessness"], "auas": ["pruritus"]}
MANUAL_SPECIFIC_MISSING = {"dlqi": MANUAL_ITEMS["dlqi"], "pure4": MANUAL_ITEMS["pure4"],
                           "sevenPc": [k for k in MANUAL_ITEMS["sevenPc"] if k != "crustingOrBleeding"]}


def local_valid_body(system: str, image_b64: str) -> dict[str, Any]:
    image, condition, site, answers = LOCAL_VALID_BODIES[system]
    return {"bodySite": site, "payload": {"contentAttachment": {"data": image_b64}},
            "knownCondition": condition.handbuilt_json(), "scoringSystem": scoring_system(system, answers)}


def manual_valid_body(system: str, image_b64: str) -> dict[str, Any]:
    return {"bodySite": "armRight", "payload": [{"contentAttachment": {"data": image_b64}}],
            "knownCondition": MELANOMA.handbuilt_json(),
            "scoringSystem": scoring_system(system, manual_answers(system))}


def remove_by_dot_path(body: dict[str, Any], path: str) -> dict[str, Any]:
    """The tests' removeFieldByDotPath: unset the key; an emptied container becomes `{}`."""
    body = copy.deepcopy(body)
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    ref = body
    for key in keys[:-1]:
        try:
            ref = ref[key]
        except (KeyError, IndexError, TypeError):
            return body
        if ref is None:
            return body
    last = keys[-1]
    if isinstance(ref, dict):
        ref.pop(last, None)
    elif isinstance(ref, list) and isinstance(last, int) and last < len(ref):
        ref.pop(last)
    if len(ref) == 0 and isinstance(ref, list):  # PHP: an emptied array is replaced by new stdClass()
        _replace(body, keys[:-1], {})
    return body


def _replace(body: Any, keys: list[Any], value: Any) -> None:
    ref = body
    for key in keys[:-1]:
        ref = ref[key]
    ref[keys[-1]] = value


def missing_field_scenarios() -> list[Scenario]:
    out = []
    for system in LOCAL_VALID_BODIES:
        rows = [(p if p != "@payload" else "payload.contentAttachment.data",
                 loc if loc is not None else ("payload", "contentAttachment", "data")) for p, loc in GENERIC_MISSING]
        rows += [(f"scoringSystem.{system}.questionnaireResponse.item.{item}",
                  ("scoringSystem", system, "questionnaireResponse", "item", item))
                 for item in LOCAL_SPECIFIC_MISSING.get(system, [])]
        for path, loc in rows:
            out.append(Scenario(name=f"missing-local[{system} {path}]", kind="missing", group="missing-field-local",
                                path="severity-assessment/automatic/local", system=system,
                                image=LOCAL_VALID_BODIES[system][0], remove=path, loc=("body", *loc)))
    for system, items in MANUAL_SPECIFIC_MISSING.items():
        rows = [(p if p != "@payload" else "payload.0.contentAttachment.data",
                 loc if loc is not None else ("payload", 0, "contentAttachment", "data")) for p, loc in GENERIC_MISSING]
        rows += [(f"scoringSystem.{system}.questionnaireResponse.item.{item}",
                  ("scoringSystem", system, "questionnaireResponse", "item", item)) for item in items]
        for path, loc in rows:
            out.append(Scenario(name=f"missing-manual[{system} {path}]", kind="missing", group="missing-field-manual",
                                path="severity-assessment/manual", system=system, image="nevus.jpg",
                                remove=path, loc=("body", *loc)))
    return out


MISSING = missing_field_scenarios()

# --- data: URIs ---
DATA_URI = [
    Scenario(name="data-uri[diagnosis-support]", kind="data-uri", group="data-uri", path="diagnosis-support",
             image="psoriasis_01.jpg", loc=("body", "payload", 0, "contentAttachment", "data")),
    Scenario(name="data-uri[automatic-local]", kind="data-uri", group="data-uri",
             path="severity-assessment/automatic/local", system="apasi", image="psoriasis_01.jpg",
             loc=("body", "payload", "contentAttachment", "data")),
]

# --- diagnosis ---
DIAGNOSIS = [
    Scenario(name="diagnosis[psoriasis x3]", kind="diagnosis", group="diagnosis", path="diagnosis-support",
             images=("psoriasis_01.jpg", "psoriasis_02.jpg", "psoriasis_03.jpg"), top_condition=PSORIASIS),
    Scenario(name="diagnosis[acne]", kind="diagnosis", group="diagnosis", path="diagnosis-support",
             images=("acne.jpg",), top_condition=Condition("ED80.Z", "Acne, unspecified", "Acne")),
    Scenario(name="diagnosis[psoriasis + invalid x2]", kind="diagnosis", group="diagnosis-invalid",
             path="diagnosis-support", images=("psoriasis_01.jpg", "invalid.png", "invalid.png"), failed_media=2),
]

# --- login / device information ---
LOGIN = [
    Scenario(name="login[valid]", kind="login", group="login", path="login"),
    Scenario(name="login[foo/bar]", kind="login", group="login", path="login", username="foo", password="bar"),
    Scenario(name="login[foo@bar.com/zeta]", kind="login", group="login", path="login",
             username="foo@bar.com", password="zeta"),
]
DEVICE = [Scenario(name="device-information", kind="device", group="device-information", path="device-information")]

ALL: list[Scenario] = [*LOGIN, *DEVICE, *LOCAL, *MANUAL, *DIAGNOSIS, *DATA_URI, *MISSING]
BY_NAME: dict[str, Scenario] = {s.name: s for s in ALL}
assert len(BY_NAME) == len(ALL), "scenario names must be unique"

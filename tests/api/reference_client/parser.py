"""A Python port of the reference SDK's response parsing strictness (its `src/Response/**`).

The SDK parses decoded JSON in PHP 8 without `strict_types`:

- scalars coerce (an int where a float is declared is fine, a numeric string too);
- `null` (or an absent key, which reads as `null`) passed to a non-nullable parameter, an array where
  a scalar is declared, or a scalar where an array is declared is a TypeError: the call throws and the
  client gets nothing -> `ParserError` here;
- an enum `::from()` outside its cases is a ValueError -> `ParserError`;
- reading an absent key is an "Undefined array key" warning (and reading a key of `null`, "Trying to
  access array offset on null"); `foreach` over a non-array is a warning. The reference suite runs with
  `failOnWarning`, so a warning fails it too: they are collected in `Parsed.warnings`.

Each `parse_*` returns `Parsed(value, warnings)` where `value` is the plain-dict view the tests read
(field names as in the PHP value objects), or raises `ParserError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SCORING_SYSTEM_CODES = frozenset({
    "aeasi", "agppga", "aihs4", "aladin", "apasi", "asalt", "ascorad", "auas", "awosi", "nsil", "dlqi",
    "gags", "ihs4", "pasi", "pga", "pure4", "resvech", "scorad", "scovid", "sevenPc", "uas", "uct", "avasi",
})
MODALITY_VALUES = ("None", "Clinical", "Dermoscopic")
INTENSITIES = {0: "None", 1: "Low", 2: "Moderate", 3: "High"}

MISSING = object()  # an absent key (PHP reads it as null after a warning)
_NUMERIC = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$")


class ParserError(Exception):
    """Where the PHP parser would throw (TypeError / ValueError / JsonException)."""


@dataclass
class Parsed:
    value: Any
    warnings: list[str] = field(default_factory=list)


class _Php:
    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    # --- reading ---
    def idx(self, container: Any, key: str | int, where: str) -> Any:
        """`$container[key]`: a warning and null when absent or when the container is not an array."""
        if isinstance(container, dict):
            if key in container:
                return container[key]
            self.warn(f"Undefined array key {key!r} at {where}")
            return None
        if isinstance(container, list):
            if isinstance(key, int) and 0 <= key < len(container):
                return container[key]
            self.warn(f"Undefined array key {key!r} at {where}")
            return None
        if isinstance(container, str):
            raise ParserError(f"Cannot access offset {key!r} on string at {where}")
        kind = "null" if container is None else type(container).__name__
        self.warn(f"Trying to access array offset on {kind} at {where}")
        return None

    @staticmethod
    def quiet(container: Any, *keys: str | int) -> Any:
        """`$container[k1][k2] ?? null` and `isset(...)`: no warnings."""
        for key in keys:
            if isinstance(container, dict):
                container = container.get(key)
            elif isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
                container = container[key]
            else:
                return None
        return container

    def iterate(self, value: Any, where: str) -> list[tuple[Any, Any]]:
        """`foreach ($value as $k => $v)`: a warning (and no iteration) for a non-array."""
        if isinstance(value, dict):
            return list(value.items())
        if isinstance(value, list):
            return list(enumerate(value))
        self.warn(f"foreach() argument must be of type array|object, {type(value).__name__} given at {where}")
        return []

    # --- parameter types (coercive mode) ---
    @staticmethod
    def _null(value: Any, want: str, where: str) -> None:
        if value is None:
            raise ParserError(f"{where}: must be of type {want}, null given")

    def string(self, value: Any, where: str, nullable: bool = False) -> str | None:
        if value is None and nullable:
            return None
        self._null(value, "string", where)
        if isinstance(value, bool):
            return "1" if value else ""
        if isinstance(value, (int, float, str)):
            return value if isinstance(value, str) else str(value)
        raise ParserError(f"{where}: must be of type string, {type(value).__name__} given")

    def number(self, value: Any, where: str, nullable: bool = False) -> float | None:
        if value is None and nullable:
            return None
        self._null(value, "float", where)
        if isinstance(value, bool):
            return float(value)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str) and _NUMERIC.match(value):
            return float(value)
        raise ParserError(f"{where}: must be of type float, {type(value).__name__} given")

    def integer(self, value: Any, where: str) -> int:
        self._null(value, "int", where)
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)  # a fractional part is only a deprecation notice in PHP 8.1+
        if isinstance(value, str) and _NUMERIC.match(value):
            return int(float(value))
        raise ParserError(f"{where}: must be of type int, {type(value).__name__} given")

    def boolean(self, value: Any, where: str) -> bool:
        self._null(value, "bool", where)
        if isinstance(value, (bool, int, float, str)):
            return bool(value) and value != "0"
        raise ParserError(f"{where}: must be of type bool, {type(value).__name__} given")

    def array(self, value: Any, where: str, nullable: bool = False) -> Any:
        if value is None and nullable:
            return None
        if isinstance(value, (dict, list)):
            return value
        raise ParserError(f"{where}: must be of type array, {'null' if value is None else type(value).__name__} given")

    @staticmethod
    def cast_float(value: Any) -> float:
        """`(float)$x` / `floatval($x)`: never throws."""
        if isinstance(value, (bool, int, float)):
            return float(value)
        if isinstance(value, str):
            m = re.match(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", value)
            return float(m.group(0)) if m else 0.0
        if isinstance(value, (dict, list)):
            return 1.0 if value else 0.0
        return 0.0

    def date(self, value: Any, where: str) -> datetime:
        # `new DateTimeImmutable(null)` is a deprecation and reads as "now"; absent keys already warned.
        if value is None:
            return datetime.now()
        text = self.string(value, where)
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ParserError(f"{where}: DateTimeImmutable cannot parse {text!r}") from exc


# --- value objects ---
def _code(p: _Php, json: Any, where: str) -> dict[str, Any]:
    """src/Common/Code.php + CodingItem.php."""
    json = p.array(json, f"{where} (Code::fromJson)")
    coding = _Php.quiet(json, "coding")
    if coding is None:
        coding = []
    if not isinstance(coding, (dict, list)):
        raise ParserError(f"{where}.coding: array_map(): Argument #2 must be of type array")
    items = []
    for i, item in (coding.items() if isinstance(coding, dict) else enumerate(coding)):
        w = f"{where}.coding[{i}]"
        item = p.array(item, f"{w} (CodingItem::fromJson)")
        items.append({
            "code": p.string(p.idx(item, "code", w), f"{w}.code"),
            "display": p.string(p.idx(item, "display", w), f"{w}.display", nullable=True),
            "system": p.string(p.idx(item, "system", w), f"{w}.system", nullable=True),
            "systemDisplay": p.string(p.idx(item, "systemDisplay", w), f"{w}.systemDisplay"),
            "version": p.string(p.idx(item, "version", w), f"{w}.version", nullable=True),
        })
    return {"coding": items, "text": p.string(p.idx(json, "text", where), f"{where}.text")}


def _additional_data_item(p: _Php, json: Any, where: str) -> dict[str, Any]:
    json = p.array(json, f"{where} (AdditionalDataItem::fromJson)")
    return {
        "value": p.number(p.idx(json, "value", where), f"{where}.value"),
        "code": _code(p, p.idx(json, "code", where), f"{where}.code"),
        "interpretation": p.string(_Php.quiet(json, "interpretation"), f"{where}.interpretation", nullable=True),
    }


def _image(p: _Php, json: Any, where: str) -> dict[str, Any]:
    """Attachment.php / ExplainabilityMedia.php: all six fields required."""
    json = p.array(json, where)
    return {
        "title": p.string(p.idx(json, "title", where), f"{where}.title"),
        "contentType": p.string(p.idx(json, "contentType", where), f"{where}.contentType"),
        "data": p.string(p.idx(json, "data", where), f"{where}.data"),
        "height": p.integer(p.idx(json, "height", where), f"{where}.height"),
        "width": p.integer(p.idx(json, "width", where), f"{where}.width"),
        "colorModel": p.string(p.idx(json, "colorModel", where), f"{where}.colorModel"),
    }


def _media_validity(p: _Php, json: Any, where: str) -> dict[str, Any]:
    json = p.array(json, f"{where} (MediaValidity::fromJson)")
    q = p.array(p.idx(json, "quality", where), f"{where}.quality")
    quality = {
        "acceptable": p.boolean(p.idx(q, "acceptable", f"{where}.quality"), f"{where}.quality.acceptable"),
        "score": p.cast_float(p.idx(q, "score", f"{where}.quality")),
        "interpretation": p.string(p.idx(q, "interpretation", f"{where}.quality"), f"{where}.quality.interpretation"),
    }
    d = p.array(p.idx(json, "domain", where), f"{where}.domain")
    domain = {
        "isDermatological": p.boolean(p.idx(d, "isDermatological", f"{where}.domain"), f"{where}.domain.isDermatological"),
        "aiConfidence": _additional_data_item(
            p, p.idx(p.idx(d, "additionalData", f"{where}.domain"), "aiConfidence", f"{where}.domain.additionalData"),
            f"{where}.domain.additionalData.aiConfidence"),
    }
    m = p.array(p.idx(json, "modality", where), f"{where}.modality")
    raw = p.idx(m, "value", f"{where}.modality")
    value = "" if raw is None else p.string(raw, f"{where}.modality.value")
    if value not in MODALITY_VALUES:
        raise ParserError(f"{where}.modality.value: {value!r} is not a valid backing value for ModalityValue")
    extra = p.idx(m, "additionalData", f"{where}.modality")
    modality = {
        "value": value,
        "aiConfidenceClinical": _additional_data_item(
            p, p.idx(extra, "aiConfidenceClinical", f"{where}.modality.additionalData"),
            f"{where}.modality.additionalData.aiConfidenceClinical"),
        "aiConfidenceDermoscopic": _additional_data_item(
            p, p.idx(extra, "aiConfidenceDermoscopic", f"{where}.modality.additionalData"),
            f"{where}.modality.additionalData.aiConfidenceDermoscopic"),
    }
    return {"quality": quality, "domain": domain, "modality": modality,
            "isValid": p.boolean(p.idx(json, "isValid", where), f"{where}.isValid")}


def _intensity(p: _Php, value: Any, where: str) -> int:
    # Intensity::from(): an int-backed enum; null is coerced to 0 (a deprecation), other values must be a case.
    if value is None:
        number = 0
    elif isinstance(value, bool):
        number = int(value)
    elif isinstance(value, (int, float)) or (isinstance(value, str) and _NUMERIC.match(value)):
        number = float(value)
        if number != int(number):
            raise ParserError(f"{where}: {value!r} is not a valid backing value for Intensity")
        number = int(number)
    else:
        raise ParserError(f"{where}: Intensity::from(): Argument #1 must be of type int, {type(value).__name__} given")
    if number not in INTENSITIES:
        raise ParserError(f"{where}: {value!r} is not a valid backing value for Intensity")
    return number


def _score(p: _Php, json: Any, where: str) -> dict[str, Any]:
    json = p.array(json, f"{where} (ScoringSystemScore::fromJson)")
    interpretation = p.idx(json, "interpretation", where)
    gsc_json = _Php.quiet(json, "additionalData", "globalScoreContribution")
    gsc = None
    if gsc_json is not None:
        w = f"{where}.additionalData.globalScoreContribution"
        gsc_json = p.array(gsc_json, w)
        gsc = {"value": p.number(p.idx(gsc_json, "value", w), f"{w}.value"),
               "code": _code(p, p.idx(gsc_json, "code", w), f"{w}.code")}
    return {
        "value": p.number(p.idx(json, "value", where), f"{where}.value"),
        "category": p.string(p.idx(interpretation, "category", f"{where}.interpretation"),
                             f"{where}.interpretation.category"),
        "intensity": _intensity(p, p.idx(interpretation, "intensity", f"{where}.interpretation"),
                                f"{where}.interpretation.intensity"),
        "globalScoreContribution": gsc,
    }


def _evolution_item(p: _Php, item_code: Any, json: Any, where: str) -> dict[str, Any]:
    json = p.array(json, f"{where} (EvolutionItem::fromJson)")
    additional = None
    if _Php.quiet(json, "additionalData") is not None:
        additional = {}
        for key, entry in p.iterate(json["additionalData"], f"{where}.additionalData"):
            additional[str(key)] = _additional_data_item(p, entry, f"{where}.additionalData.{key}")
    return {
        "itemCode": str(item_code),
        "code": _code(p, p.idx(json, "code", where), f"{where}.code"),
        "value": p.cast_float(p.idx(json, "value", where)),
        "interpretation": p.string(_Php.quiet(json, "interpretation"), f"{where}.interpretation", nullable=True),
        "additionalData": additional,
    }


def _detection(p: _Php, json: Any, where: str) -> dict[str, Any]:
    json = p.array(json, f"{where} (Detection::fromJson)")
    box = p.idx(json, "box", where)
    corners = {k: p.number(p.idx(box, k, f"{where}.box"), f"{where}.box.{k}") for k in ("x1", "y1", "x2", "y2")}
    return {"confidence": p.number(p.idx(json, "confidence", where), f"{where}.confidence"),
            "code": _code(p, p.idx(json, "code", where), f"{where}.code"), "box": corners}


def _top(p: _Php, json: Any) -> dict[str, Any]:
    return {
        "resourceType": p.string(p.idx(json, "resourceType", "$"), "resourceType"),
        "status": p.string(p.idx(json, "status", "$"), "status"),
        "analysisDuration": p.number(p.idx(json, "analysisDuration", "$"), "analysisDuration"),
        "issued": p.date(p.idx(json, "issued", "$"), "issued"),
    }


# --- the three responses ---
def parse_severity(report: Any) -> Parsed:
    """src/Response/SeverityAssessmentResponse.php::fromJson."""
    p = _Php()
    report = p.array(report, "$ (toArray)")
    evolution: dict[str, Any] = {}
    for system, instance in p.iterate(p.idx(report, "patientEvolution", "$"), "patientEvolution"):
        if instance is None:
            continue
        where = f"patientEvolution.{system}"
        items = None
        item_json = p.idx(instance, "item", where)
        if item_json is not None:
            items = {}
            for code, item in p.iterate(item_json, f"{where}.item"):
                items[str(code)] = _evolution_item(p, code, item, f"{where}.item.{code}")
        attachments = None
        attachment_json = _Php.quiet(instance, "media", "attachment")
        if attachment_json is not None:
            attachments = {}
            for code, att in p.iterate(attachment_json, f"{where}.media.attachment"):
                attachments[str(code)] = _image(p, att, f"{where}.media.attachment.{code}")
        detection_json = _Php.quiet(instance, "media", "detection")
        detection_json = [] if detection_json is None else detection_json
        if not isinstance(detection_json, (dict, list)):
            raise ParserError(f"{where}.media.detection: array_map(): Argument #2 must be of type array")
        values = detection_json.values() if isinstance(detection_json, dict) else detection_json
        detections = [_detection(p, d, f"{where}.media.detection[{i}]") for i, d in enumerate(values)]
        if str(system) not in SCORING_SYSTEM_CODES:
            raise ParserError(f"{where}: {system!r} is not a valid backing value for enum ScoringSystemCode")
        evolution[str(system)] = {
            "scoringSystemCode": str(system),
            "score": _score(p, p.idx(instance, "score", where), f"{where}.score"),
            "item": items,
            "media": {"attachment": attachments, "detection": detections},
        }
    media_validity = None
    if _Php.quiet(report, "mediaValidity") is not None:
        media_validity = _media_validity(p, report["mediaValidity"], "mediaValidity")
    value = {**_top(p, report), "mediaValidity": media_validity, "patientEvolution": evolution}
    return Parsed(value, p.warnings)


def _clinical_indicator(p: _Php, json: Any, where: str) -> dict[str, float]:
    json = p.array(json, f"{where} (ClinicalIndicator::fromJson)")
    keys = ("hasCondition", "pigmentedLesion", "malignancy", "urgentReferral", "highPriorityReferral")
    return {k: p.number(p.idx(json, k, where), f"{where}.{k}") for k in keys}


def parse_diagnosis(report: Any) -> Parsed:
    """src/Response/DiagnosisSupportResponse.php::createFromJson."""
    p = _Php()
    report = p.array(report, "$ (toArray)")
    clinical = _clinical_indicator(p, p.idx(report, "clinicalIndicator", "$"), "clinicalIndicator")
    perf_json = p.array(p.idx(report, "performanceIndicator", "$"), "performanceIndicator")
    performance = {k: p.number(p.idx(perf_json, k, "performanceIndicator"), f"performanceIndicator.{k}")
                   for k in ("sensitivity", "specificity", "entropy")}
    conclusions = []
    if _Php.quiet(report, "conclusion") is not None:
        for i, c in p.iterate(report["conclusion"], "conclusion"):
            w = f"conclusion[{i}]"
            conclusions.append({"probability": p.number(p.idx(c, "probability", w), f"{w}.probability"),
                                "code": _code(p, p.idx(c, "code", w), f"{w}.code")})
    imaging = []
    for n, record in p.iterate(p.idx(report, "imagingAnalysis", "$"), "imagingAnalysis"):
        wr = f"imagingAnalysis[{n}]"
        per_image = []
        listed = _Php.quiet(record, "conclusion")
        for i, c in p.iterate([] if listed is None else listed, f"{wr}.conclusion"):
            w = f"{wr}.conclusion[{i}]"
            probability = p.number(p.idx(c, "probability", w), f"{w}.probability")
            code = _code(p, p.idx(c, "code", w), f"{w}.code")
            explain = p.array(p.idx(c, "explainability", w), f"{w}.explainability", nullable=True)
            heat = None
            if explain is not None:
                heat = _image(p, p.idx(explain, "heatMap", f"{w}.explainability"), f"{w}.explainability.heatMap")
            per_image.append({"probability": probability, "code": code,
                              "explainability": None if explain is None else {"heatMap": heat}})
        validity = _media_validity(p, p.idx(record, "mediaValidity", wr), f"{wr}.mediaValidity")
        perf = p.array(p.idx(record, "performanceIndicator", wr), f"{wr}.performanceIndicator")
        entropy = p.number(p.idx(perf, "entropy", f"{wr}.performanceIndicator"), f"{wr}.performanceIndicator.entropy")
        imaging.append({"conclusions": per_image, "mediaValidity": validity, "performanceIndicator": {"entropy": entropy},
                        "clinicalIndicator": _clinical_indicator(p, p.idx(record, "clinicalIndicator", wr),
                                                                 f"{wr}.clinicalIndicator")})
    value = {**_top(p, report), "clinicalIndicator": clinical, "performanceIndicator": performance,
             "conclusions": conclusions, "imagingAnalysis": imaging}
    value["failedMedia"] = [i for i, record in enumerate(imaging) if not record["mediaValidity"]["isValid"]]
    return Parsed(value, p.warnings)


def parse_login(body: Any) -> Parsed:
    """src/Response/AccessToken.php as built by the client's login()."""
    p = _Php()
    body = p.array(body, "$ (toArray)")
    value = {
        "value": p.string(p.idx(body, "access_token", "$"), "access_token"),
        "tokenType": p.string(p.idx(body, "token_type", "$"), "token_type"),
        "expiresInMinutes": p.integer(p.idx(body, "expires_in_minutes", "$"), "expires_in_minutes"),
    }
    return Parsed(value, p.warnings)

"""A finished report as a FHIR R4 `Bundle` (SPEC §2.10, `Accept: application/fhir+json`).

Pure conversion of the stored report dict (the plain JSON the API returns) into plain dicts; no
model code is imported, so the API stays free of torch and OpenCV. The bundle is a `collection`:

- one `DiagnosticReport` (identifier, status, category, code, issued, conclusion) whose `result`
  lists the report's top-level Observations and whose `media` lists every image it carries;
- diagnosis: one `Observation` per condition probability (ICD-11 coded, value in %), one per
  clinical and performance indicator, and per image a panel Observation whose `hasMember` holds
  that image's quality assessment, indicators and condition probabilities;
- severity: one `Observation` for the score (per body site and whole-body when global), whose
  `hasMember` holds one Observation per item (and the image-quality assessment), detections as
  members of the item they count;
- heat maps, masks and annotated images as `Media`; the model bundles as `Device`.

Every resource gets a `urn:uuid:` fullUrl derived from the report id (uuid5), so the same report
always converts to the same bundle and references stay stable between requests. Codes that no
standard terminology holds (indicators, scoring systems, items, body sites) use dermq's own code
systems, `urn:dermq:<name>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pipeline.severity.body_sites import BODY_SITES
from pipeline.severity.systems import SYSTEMS

FHIR_JSON = "application/fhir+json"

# The canonical URI FHIR registers for ICD-11 MMS; the plain report keeps the browser URI, and its
# `version` (the release, "2025-01") is carried over.
ICD11 = "http://id.who.int/icd/release/11/mms"
LOINC = "http://loinc.org"  # the plain report's code "100063-7" (Primary skin concern) is LOINC
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
MEDIA_TYPE = "http://terminology.hl7.org/CodeSystem/media-type"
LOCAL = "urn:dermq:"  # + code system name

_NAMESPACE = uuid.UUID("5b0c5e8e-7d0a-4a47-9f55-1f7f5c6b2f3a")  # dermq's uuid5 namespace for bundle entries
_INDICATORS = {
    "hasCondition": "Likelihood that a skin condition is present",
    "pigmentedLesion": "Likelihood of a pigmented lesion",
    "malignancy": "Likelihood of malignancy",
    "urgentReferral": "Likelihood that urgent referral (within 48 h) is warranted",
    "highPriorityReferral": "Likelihood that high-priority referral (within 15 days) is warranted",
    "sensitivity": "Validation sensitivity of the model for the top-ranked condition",
    "specificity": "Validation specificity of the model for the top-ranked condition",
    "entropy": "Entropy of the predicted distribution (percent of its maximum)",
}
_INTENSITY = {0: "none", 1: "low", 2: "moderate", 3: "high"}
_IMAGING = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"}]}]
_EXAM = [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "exam", "display": "Exam"}]}]


def wants_fhir(accept: str | None) -> bool:
    """Whether an Accept header prefers FHIR JSON: listed with q > 0 and ranked above any explicit
    application/json (a tie, or wildcards only, keeps the plain report, the reference shape)."""
    fhir_q = json_q = 0.0
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        media = media.lower()
        if media == FHIR_JSON:
            fhir_q = max(fhir_q, q)
        elif media == "application/json":
            json_q = max(json_q, q)
    return fhir_q > 0 and fhir_q > json_q


def to_bundle(report: Mapping[str, Any]) -> dict[str, Any]:
    """The FHIR R4 Bundle (a dict, ready for JSON) of a diagnosis or severity report."""
    return _Converter(report).bundle()


def _clean(value: Any) -> Any:
    """Drop None, empty strings and empty containers: FHIR allows none of them (an element is
    either absent or has content), and the plain report has nulls where a value is unknown."""
    if isinstance(value, dict):
        out = {k: c for k, v in value.items() if (c := _clean(v)) is not None}
        return out or None
    if isinstance(value, list):
        out = [c for v in value if (c := _clean(v)) is not None]
        return out or None
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _coding(coding: Mapping[str, Any], local: str) -> dict[str, Any]:
    """A plain-report coding in FHIR terms: ICD-11 and LOINC to their canonical URIs, dermq's own
    codes (no system) to `urn:dermq:<local>`; `systemDisplay` is not a FHIR element."""
    system = coding.get("system") or ""
    if coding.get("systemDisplay") == "ICD-11" or "icd.who.int" in system:
        system = ICD11
    elif "loinc.org" in system:
        system = LOINC
    elif not system:
        system = LOCAL + local
    return {"system": system, "version": coding.get("version"), "code": coding.get("code"),
            "display": coding.get("display")}


def _concept(concept: Mapping[str, Any] | None, local: str = "code") -> dict[str, Any]:
    concept = concept or {}
    return {"coding": [_coding(c, local) for c in concept.get("coding") or []], "text": concept.get("text")}


def _local(system: str, code: str, text: str | None = None) -> dict[str, Any]:
    return {"coding": [{"system": LOCAL + system, "code": code, "display": text}], "text": text or code}


def _quantity(value: float, unit: str | None = None) -> dict[str, Any]:
    if unit == "%":
        return {"value": value, "unit": "%", "system": UCUM, "code": "%"}
    return {"value": value, "unit": unit}


def _value(value: Any, unit: str | None = None) -> dict[str, Any]:
    """`value[x]` of an Observation or component; a missing value is a `dataAbsentReason` (obs-6)."""
    if isinstance(value, bool):  # before numbers: bool is an int
        return {"valueBoolean": value}
    if isinstance(value, (int, float)):
        return {"valueQuantity": _quantity(value, unit)}
    if isinstance(value, str) and value.strip():
        return {"valueString": value}
    return {"dataAbsentReason": {"coding": [{"system": DATA_ABSENT, "code": "unknown", "display": "Unknown"}]}}


def _additional(data: Mapping[str, Any] | None, local: str) -> list[dict[str, Any]]:
    """Components for an `additionalData` block: {key: {value, code {text}}}; confidences are %."""
    out = []
    for key, entry in (data or {}).items():
        if not isinstance(entry, Mapping):
            continue
        text = (entry.get("code") or {}).get("text")
        out.append({"code": _local(local, key, text),
                    **_value(entry.get("value"), "%" if key.startswith("aiConfidence") else None)})
    return out


class _Converter:
    def __init__(self, report: Mapping[str, Any]):
        self.report = report
        self.report_id = str((report.get("identifier") or {}).get("value") or "")
        self.issued = report.get("issued")
        self.status = report.get("status") or "preliminary"
        self.entries: list[dict[str, Any]] = []
        self.media: list[dict[str, Any]] = []  # DiagnosticReport.media
        self.devices: dict[str, dict[str, str]] = {}  # model task -> Device reference

    # --- bundle plumbing ---
    def add(self, key: str, resource: dict[str, Any]) -> dict[str, str]:
        """Add a resource under a key unique within the report; returns a Reference to it."""
        url = f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{self.report_id}/{key}')}"
        self.entries.append({"fullUrl": url, "resource": resource})
        return {"reference": url}

    def observation(self, key: str, code: dict[str, Any], value: Any = None, *, unit: str | None = None,
                    category: list[dict[str, Any]] = _IMAGING, **fields: Any) -> dict[str, str]:
        return self.add(key, {"resourceType": "Observation", "status": self.status, "category": category,
                              "code": code, "effectiveDateTime": self.issued, "issued": self.issued,
                              **fields, **_value(value, unit)})

    def add_media(self, key: str, attachment: Mapping[str, Any], comment: str, **fields: Any) -> dict[str, str]:
        ref = self.add(key, {
            "resourceType": "Media", "status": "completed",
            "type": {"coding": [{"system": MEDIA_TYPE, "code": "image", "display": "Image"}]},
            "issued": self.issued, "height": attachment.get("height"), "width": attachment.get("width"),
            "content": {"contentType": attachment.get("contentType"), "data": attachment.get("data"),
                        "title": attachment.get("title")},
            **fields,
        })
        self.media.append({"comment": comment, "link": ref})
        return ref

    def bundle(self) -> dict[str, Any]:
        for i, model in enumerate((self.report.get("device") or {}).get("models") or []):
            ref = self.add(f"device/{i}", {
                "resourceType": "Device",
                "deviceName": [{"name": model.get("name") or "model", "type": "model-name"}],
                "type": {"text": model.get("task")}, "version": [{"value": str(model.get("version") or "")}],
                "note": [{"text": f"sha256 {model['sha256']}"}] if model.get("sha256") else None,
            })
            self.devices.setdefault(str(model.get("task")), ref)
        if "patientEvolution" in self.report:
            code, result, conclusion = self.severity()
        else:
            code, result, conclusion = self.diagnosis()
        warnings = " ".join(self.report.get("warnings") or [])
        report = {
            "resourceType": "DiagnosticReport",
            # The report's uuid as a URI (RFC 3986 system), so it matches across FHIR and plain JSON.
            "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{self.report_id}"}],
            "status": self.status,
            "category": [_concept(c, "category") for c in self.report.get("category") or []],
            "code": code, "effectiveDateTime": self.issued, "issued": self.issued,
            "result": result, "media": self.media, "conclusion": " ".join(filter(None, [conclusion, warnings])),
        }
        if top := (self.report.get("conclusion") or [None])[0]:
            report["conclusionCode"] = [_concept(top["code"], "condition")]
        self.add("report", report)
        self.entries.insert(0, self.entries.pop())  # the report first, as readers expect
        return _clean({"resourceType": "Bundle", "type": "collection", "timestamp": self.issued,
                       "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{self.report_id}"},
                       "entry": self.entries})

    # --- diagnosis ---
    def diagnosis(self) -> tuple[dict[str, Any], list[dict[str, str]], str]:
        device = self.devices.get("classification")
        result = self.analysis("aggregate", self.report, device)
        for i, image in enumerate(self.report.get("imagingAnalysis") or []):
            key = f"image/{i}"
            members = self.analysis(key, image, device, image=i)
            validity = image.get("mediaValidity")
            if validity:
                members.insert(0, self.validity(f"{key}/validity", validity, f"Image {i + 1}"))
            result.append(self.observation(key, _local("analysis", "imagingAnalysis", f"Image {i + 1} analysis"),
                                           hasMember=members))
        code = _concept(self.report.get("code"), "report") if self.report.get("code") else {
            "coding": [{"system": LOINC, "code": "100063-7", "display": "Primary skin concern"}]}
        top = (self.report.get("conclusion") or [None])[0]
        conclusion = (f"Most probable: {top['code'].get('text')} ({top['probability']:.1f} %)." if top
                      else "No image was valid for analysis; no condition is ranked.")
        return code, result, conclusion

    def analysis(self, key: str, block: Mapping[str, Any], device: dict[str, str] | None,
                 image: int | None = None) -> list[dict[str, str]]:
        """Indicator and condition Observations of the aggregate or of one image (its heat maps too)."""
        refs = []
        for group in ("clinicalIndicator", "performanceIndicator"):
            for name, value in (block.get(group) or {}).items():
                refs.append(self.observation(f"{key}/{group}/{name}", _local(group, name, _INDICATORS.get(name)),
                                             value, unit="%", device=device))
        for item in block.get("conclusion") or []:
            concept = _concept(item.get("code"), "condition")
            code = next((c["code"] for c in concept["coding"] if c.get("code")), concept.get("text"))
            ref = self.observation(f"{key}/condition/{code}", concept, item.get("probability"), unit="%",
                                   device=device)
            refs.append(ref)
            heat_map = (item.get("explainability") or {}).get("heatMap")
            if heat_map and image is not None:
                self.add_media(f"{key}/heatMap/{code}", heat_map,
                               f"Image {image + 1}: heat map for {concept.get('text') or code}",
                               reasonCode=[concept])  # which condition the map explains
        return refs

    def validity(self, key: str, validity: Mapping[str, Any], label: str,
                 body_site: dict[str, Any] | None = None) -> dict[str, str]:
        """The image-quality assessment: valueBoolean isValid, one component per finding."""
        quality, domain, modality = (validity.get(k) or {} for k in ("quality", "domain", "modality"))
        components = [
            {"code": _local("mediaValidity", "qualityScore", "Image quality score (0-100)"),
             **_value(quality.get("score")), "interpretation": [{"text": quality.get("interpretation")}]},
            {"code": _local("mediaValidity", "qualityAcceptable", "Image quality acceptable"),
             **_value(quality.get("acceptable"))},
        ]
        for name, metric in (quality.get("metrics") or {}).items():
            normal = metric.get("acceptable")
            flag = {"system": INTERPRETATION, "code": "N" if normal else "A", "display": "Normal" if normal else "Abnormal"}
            components.append({"code": _local("qualityMetric", name, name), **_value(metric.get("value")),
                               "interpretation": [{"coding": [flag], "text": metric.get("hint")}]})
        components.append({"code": _local("mediaValidity", "isDermatological", "Image is dermatological"),
                           **_value(domain.get("isDermatological"))})
        components += _additional(domain.get("additionalData"), "mediaValidity")
        if modality.get("value"):
            components.append({"code": _local("mediaValidity", "modality", "Image modality"),
                               "valueCodeableConcept": _local("modality", modality["value"], modality["value"])})
        components += _additional(modality.get("additionalData"), "mediaValidity")
        return self.observation(key, _local("mediaValidity", "mediaValidity", f"{label}: image quality assessment"),
                                validity.get("isValid"), component=components, bodySite=body_site,
                                device=self.devices.get("classification"))

    # --- severity ---
    def severity(self) -> tuple[dict[str, Any], list[dict[str, str]], str]:
        code, entry = next(((k, v) for k, v in self.report["patientEvolution"].items() if v), (None, None))
        if code is None:
            return {"text": "Severity assessment"}, [], ""
        system = SYSTEMS.get(code)
        title = system.title if system else code
        system_code = _local("scoringSystem", code, title)
        known = (self.report.get("knownCondition") or {}).get("conclusion")
        condition = [{"code": _local("score", "knownCondition", "Known condition"), "valueCodeableConcept": _concept(known, "condition")}] \
            if known else []
        if "bodySite" in entry:  # global: the whole-body score over one score per site
            sites = [self.site(f"site/{i}", system_code, site, site.get("code"), site.get("mediaValidity"))
                     for i, site in enumerate(entry["bodySite"])]
            score = self.score("score", system_code, entry, condition, sites)
        else:
            score = self.site("score", system_code, entry, None, self.report.get("mediaValidity"), condition)
        value = (entry.get("score") or {}).get("value")
        category = ((entry.get("score") or {}).get("interpretation") or {}).get("category")
        conclusion = f"{title}: {value}{f' ({category})' if category else ''}."
        return {**system_code, "text": f"{title} severity assessment"}, [score], conclusion

    def score(self, key: str, system_code: dict[str, Any], entry: Mapping[str, Any], extra: list[dict[str, Any]],
              members: list[dict[str, str]], body_site: dict[str, Any] | None = None) -> dict[str, str]:
        score = entry.get("score") or {}
        interpretation = score.get("interpretation") or {}
        intensity = interpretation.get("intensity")
        flag = {"coding": [{"system": LOCAL + "severityIntensity", "code": str(intensity),
                            "display": _INTENSITY.get(intensity)}] if intensity is not None else None,
                "text": interpretation.get("category")}
        return self.observation(key, system_code, score.get("value"), category=_EXAM, interpretation=[flag],
                                component=[*_additional(score.get("additionalData"), "score"), *extra],
                                bodySite=body_site, hasMember=members)

    def site(self, key: str, system_code: dict[str, Any], entry: Mapping[str, Any], site: str | None,
             validity: Mapping[str, Any] | None, extra: list[dict[str, Any]] | None = None) -> dict[str, str]:
        """The score Observation of one body site (or of a local report), with its items and media."""
        body_site = _local("bodySite", site, BODY_SITES[site].names.get("en_GB")) if site in BODY_SITES else (
            _local("bodySite", site) if site else None)
        label = f"Body site {site}" if site else "Image"
        members = [self.validity(f"{key}/validity", validity, label, body_site)] if validity else []
        items: dict[str, dict[str, Any]] = {}
        for name, item in (entry.get("item") or {}).items():
            extras = item.get("additionalData") or {}
            ai = "aiConfidence" in extras
            items[name] = {
                "key": f"{key}/item/{name}", "code": _concept(item.get("code"), "item") if item.get("code")
                else _local("item", name), "value": item.get("value"), "bodySite": body_site,
                "method": {"text": "AI estimate from the image" if ai else "Clinician input"},
                "interpretation": [{"text": item["interpretation"]}] if isinstance(item.get("interpretation"), str)
                else None,
                "component": _additional(extras, "item"),
                "device": self.devices.get("segmentation") if ai else None, "hasMember": [],
            }
        media = entry.get("media") or {}
        loose = []  # detections of no reported item hang off the score
        for i, found in enumerate(media.get("detection") or []):
            box = found.get("box") or {}
            concept = _concept(found.get("code"), "item") if found.get("code") else {"text": "Detection"}
            ref = self.observation(f"{key}/detection/{i}", concept, found.get("confidence"), unit="%",
                                   bodySite=body_site, method={"text": "AI detection in the image"},
                                   component=[{"code": _local("box", c, f"Bounding box {c} (pixels)"),
                                               **_value(box.get(c), "px")} for c in ("x1", "y1", "x2", "y2")],
                                   device=self.devices.get("segmentation"))
            name = next((c.get("code") for c in concept.get("coding") or []), None)
            (items[name]["hasMember"] if name in items else loose).append(ref)
        for spec in items.values():
            spec_key, value = spec.pop("key"), spec.pop("value")
            members.append(self.observation(spec_key, spec.pop("code"), value, category=_EXAM, **spec))
        for name, attachment in (media.get("attachment") or {}).items():
            if isinstance(attachment, Mapping):
                self.add_media(f"{key}/media/{name}", attachment,
                               f"{label}: {attachment.get('title') or name}", bodySite=body_site)
        return self.score(key, system_code, entry, extra or [], members + loose, body_site)

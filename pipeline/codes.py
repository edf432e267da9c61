"""Code objects of the reports: FHIR CodeableConcepts for dermq's own terms.

The reference API's clients parse every item, additional-data entry and detection of a
report as ``{"text", "coding": [{"code", "display", "system", "systemDisplay", "version"}]}``
and read the item key from ``coding[0].code``. Terms that belong to no external
terminology (an item of a scoring system, an AI confidence, a detection class) are coded
here with dermq as the naming authority (``systemDisplay``) and no system URI.
"""

from __future__ import annotations

from typing import Any

NAMING_AUTHORITY = "dermq"


def local_code(key: str, text: str) -> dict[str, Any]:
    """A concept named by dermq: ``coding[0].code`` is the key clients look items up by."""
    return {
        "text": text,
        "coding": [{"code": key, "display": None, "system": None, "systemDisplay": NAMING_AUTHORITY, "version": None}],
    }


def additional_data(key: str, text: str, value: float, interpretation: str | None = None) -> dict[str, Any]:
    """One ``additionalData`` entry: a measured value with its code (and a reading of it, if any)."""
    entry: dict[str, Any] = {"value": value, "code": local_code(key, text)}
    if interpretation is not None:
        entry["interpretation"] = interpretation
    return entry


AI_CONFIDENCE_TEXT = "Confidence of the AI model on prediction"


def ai_confidence(value: float) -> dict[str, Any]:
    """``additionalData.aiConfidence`` of an AI-estimated item, in percent."""
    return additional_data("aiConfidence", AI_CONFIDENCE_TEXT, value)

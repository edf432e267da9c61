"""ICD-11 skin-condition catalogue that the diagnosis endpoint ranks over.

The catalogue lives in ``pipeline/data/conditions.json``; its order is the order of the
model's class axis, so every probability vector produced by the pipeline is indexed by
``Catalogue.codes``. Each entry carries an ICD-11 MMS code with its WHO title
(``display``), a short lay/clinical label (``text``) and the flags that the report
indicators sum over:

* ``malignancy``           = sum of probabilities of ``malignant`` classes
* ``pigmentedLesion``      = sum over ``pigmented`` classes
* ``urgentReferral``       = sum over ``urgent`` classes
* ``highPriorityReferral`` = sum over ``high_priority`` classes
* ``hasCondition``         = 100 - probability of the single ``healthy`` class

Flag rules (kept consistent so the indicators mean the same thing for every class):

* ``malignant``: malignant neoplasms of the skin, invasive or in situ (melanoma and
  melanoma in situ, SCC, BCC, Merkel cell carcinoma, Kaposi sarcoma, cutaneous T-cell
  lymphomas). Premalignant lesions such as actinic keratosis are not malignant.
* ``pigmented``: lesions whose appearance is driven by melanin or dark pigment and that
  belong in the pigmented-lesion differential (melanomas, melanocytic naevi,
  seborrhoeic keratosis, tinea nigra). Depigmenting disorders (vitiligo) are not.
* ``urgent`` (seen within 48 h): dermatological emergencies or conditions with a short
  treatment window or risk of rapid systemic deterioration - SJS/TEN, necrotising
  fasciitis, cellulitis/erysipelas, ecthyma gangrenosum, staphylococcal scalded skin,
  erythrodermic and generalised pustular psoriasis, zoster (antivirals work best within
  72 h) and measles (notifiable, needs isolation).
* ``high_priority`` (seen within 15 days): every malignant neoplasm (suspected-cancer
  pathway) plus severe inflammatory or ulcerating disease that needs specialist review
  but is not an emergency - immunobullous disease, pyoderma gangrenosum, mucocutaneous
  erythema multiforme, systemic lupus, localised pustular psoriasis, leprosy and grade
  3-4 pressure ulcers.

The two referral tiers are disjoint: an emergency is counted in ``urgentReferral`` only,
so the two indicators never double count the same probability mass.

Healthy skin: ICD-11 has no chapter-14 category for normal skin, so the single healthy
entry uses ``QA00`` (chapter 24, "General examination or investigation of persons
without complaint or reported diagnosis"): the encounter examined the skin and found
nothing to report, which is exactly what a "no skin finding" class asserts.

Verification status (``verified``): every entry records whether its code and WHO title
were confirmed against a public copy of the ICD-11 MMS tabulation (``true``) or come from
the project's best knowledge of ICD-11 MMS 2025-01 without such a check (``false``).
Unverified entries are not known to be wrong, but they must be checked against the WHO
release (the ICD-11 API at https://icd.who.int/icdapi, or the MMS linearization
spreadsheet ``LinearizationMiniOutput-MMS-en`` / ``SimpleTabulation-ICD-11-MMS-en``
published with each release) before any clinical use; see ``docs/catalogue.md``. The
flag does not change indicators or ranking; it is exposed in ``GET /conditions`` so that
consumers can tell the two apart. Current file: 326 entries, 238 verified (against a
2018/2019 MMS copy, see docs/catalogue.md), 88 unverified.

This module deliberately depends only on the standard library and numpy so that the
API, the workers and offline tooling can all import it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ICD11_SYSTEM = "https://icd.who.int/browse/2025-01/mms/en"
ICD11_SYSTEM_DISPLAY = "ICD-11"
ICD11_VERSION = "2025-01"
# Stem code: chapter char, a letter, a digit, one more char; optional 1-2 char extension.
# ICD-11 never uses the letters I and O, which is what the character classes exclude.
ICD11_CODE_PATTERN = re.compile(
    r"^[0-9A-HJ-NP-Z][A-HJ-NP-Z][0-9][0-9A-HJ-NP-Z](\.[0-9A-HJ-NP-Z]{1,2})?$"
)

DEFAULT_CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "conditions.json"

FLAG_NAMES: tuple[str, ...] = ("malignant", "pigmented", "urgent", "high_priority", "healthy")

# Attribute name -> key used in conditions.json.
_FILE_FLAG_KEYS: dict[str, str] = {
    "malignant": "malignant",
    "pigmented": "pigmented",
    "urgent": "urgent",
    "high_priority": "highPriority",
    "healthy": "healthy",
}
# Attribute name -> key used in the public GET /conditions payload.
_API_FLAG_KEYS: dict[str, str] = {
    "malignant": "malignant",
    "pigmented": "pigmented",
    "urgent": "urgentReferral",
    "high_priority": "highPriorityReferral",
    "healthy": "healthy",
}
_TEXT_FIELDS: tuple[str, ...] = ("code", "display", "text", "group")
# Key (in conditions.json and in the API payload) of the per-entry verification status.
_VERIFIED_KEY = "verified"


@dataclass(frozen=True, slots=True)
class Condition:
    """One catalogue entry: an ICD-11 concept plus the flags the indicators use."""

    code: str
    display: str
    text: str
    group: str
    malignant: bool = False
    pigmented: bool = False
    urgent: bool = False
    high_priority: bool = False
    healthy: bool = False
    # True when code + display were confirmed against a public ICD-11 MMS copy.
    verified: bool = False

    def coding(self) -> dict[str, str]:
        """FHIR Coding for this condition in the pinned ICD-11 release."""
        return {
            "system": ICD11_SYSTEM,
            "systemDisplay": ICD11_SYSTEM_DISPLAY,
            "code": self.code,
            "display": self.display,
            "version": ICD11_VERSION,
        }

    def concept(self) -> dict[str, Any]:
        """FHIR CodeableConcept used in reports: the coding plus the lay label."""
        return {"coding": [self.coding()], "text": self.text}


class Catalogue:
    """Immutable, ordered collection of conditions; position == model class index."""

    __slots__ = ("conditions", "codes", "_index", "_masks", "_healthy_index")

    def __init__(self, conditions: Iterable[Condition]) -> None:
        items = tuple(conditions)
        _validate(items)
        self.conditions: tuple[Condition, ...] = items
        self.codes: tuple[str, ...] = tuple(c.code for c in items)
        self._index: dict[str, int] = {code: i for i, code in enumerate(self.codes)}
        self._masks: dict[str, npt.NDArray[np.bool_]] = {}
        for name in FLAG_NAMES:
            mask = np.fromiter((getattr(c, name) for c in items), dtype=bool, count=len(items))
            # Shared between callers, so freeze it rather than hand out copies per request.
            mask.setflags(write=False)
            self._masks[name] = mask
        self._healthy_index: int = int(np.flatnonzero(self._masks["healthy"])[0])

    def __len__(self) -> int:
        return len(self.conditions)

    def __iter__(self) -> Iterator[Condition]:
        return iter(self.conditions)

    def __contains__(self, code: object) -> bool:
        return code in self._index

    def __repr__(self) -> str:
        return f"Catalogue({len(self)} conditions)"

    def index(self, code: str) -> int:
        """Class index of ``code``; KeyError if the code is not in the catalogue."""
        try:
            return self._index[code]
        except KeyError:
            raise KeyError(f"unknown ICD-11 code in catalogue: {code!r}") from None

    def get(self, code: str) -> Condition:
        """Condition for ``code``; KeyError if the code is not in the catalogue."""
        return self.conditions[self.index(code)]

    def flag_mask(self, name: str) -> npt.NDArray[np.bool_]:
        """Read-only boolean mask of shape ``(len(self),)`` for one flag."""
        try:
            return self._masks[name]
        except KeyError:
            raise ValueError(
                f"unknown flag {name!r}; expected one of {', '.join(FLAG_NAMES)}"
            ) from None

    @property
    def healthy_index(self) -> int:
        """Class index of the single healthy-skin / no-finding entry."""
        return self._healthy_index

    def to_json(self) -> list[dict[str, Any]]:
        """Payload for ``GET /conditions`` (camelCase keys, flags grouped)."""
        return [
            {
                "code": c.code,
                "display": c.display,
                "text": c.text,
                "group": c.group,
                "system": ICD11_SYSTEM,
                "version": ICD11_VERSION,
                "flags": {api: getattr(c, attr) for attr, api in _API_FLAG_KEYS.items()},
                "verified": c.verified,
            }
            for c in self.conditions
        ]


def _validate(conditions: tuple[Condition, ...]) -> None:
    """Reject catalogues that would silently corrupt indicators or reports."""
    if not conditions:
        raise ValueError("catalogue is empty")
    seen: dict[str, int] = {}
    for i, c in enumerate(conditions):
        for field in _TEXT_FIELDS:
            value = getattr(c, field)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"entry {i} ({c.code!r}): {field!r} must be a non-empty string")
        if not ICD11_CODE_PATTERN.fullmatch(c.code):
            raise ValueError(f"entry {i}: {c.code!r} is not a well-formed ICD-11 code")
        if c.code in seen:
            raise ValueError(f"duplicate code {c.code!r} at entries {seen[c.code]} and {i}")
        seen[c.code] = i
        for name in FLAG_NAMES:
            if not isinstance(getattr(c, name), bool):
                raise ValueError(f"entry {i} ({c.code!r}): flag {name!r} must be a boolean")
        if not isinstance(c.verified, bool):
            raise ValueError(f"entry {i} ({c.code!r}): 'verified' must be a boolean")
        if c.urgent and c.high_priority:
            raise ValueError(
                f"entry {i} ({c.code!r}): urgent and high_priority are exclusive referral tiers"
            )
        if c.healthy and (c.malignant or c.pigmented or c.urgent or c.high_priority):
            raise ValueError(f"entry {i} ({c.code!r}): the healthy entry cannot carry other flags")
    healthy = [c.code for c in conditions if c.healthy]
    if len(healthy) != 1:
        raise ValueError(
            f"catalogue needs exactly one healthy entry, found {len(healthy)}: {healthy}"
        )


def _condition_from_record(record: Any, position: int) -> Condition:
    if not isinstance(record, dict):
        raise ValueError(f"entry {position} must be a JSON object, got {type(record).__name__}")
    missing = [
        k for k in (*_TEXT_FIELDS, *_FILE_FLAG_KEYS.values(), _VERIFIED_KEY) if k not in record
    ]
    if missing:
        raise ValueError(f"entry {position} is missing keys: {', '.join(missing)}")
    return Condition(
        code=record["code"],
        display=record["display"],
        text=record["text"],
        group=record["group"],
        verified=record[_VERIFIED_KEY],
        **{attr: record[key] for attr, key in _FILE_FLAG_KEYS.items()},
    )


def _load(path: Path) -> Catalogue:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ValueError(f"cannot read condition catalogue {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"condition catalogue {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise ValueError(f"condition catalogue {path} must be a JSON list of objects")
    try:
        return Catalogue(_condition_from_record(rec, i) for i, rec in enumerate(raw))
    except ValueError as exc:
        raise ValueError(f"invalid condition catalogue {path}: {exc}") from exc


@lru_cache(maxsize=1)
def _load_default() -> Catalogue:
    return _load(DEFAULT_CATALOGUE_PATH)


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Load and validate a catalogue; the packaged default is parsed once per process.

    Raises ValueError with the offending entry when the file is unreadable or invalid.
    """
    if path is None:
        return _load_default()
    return _load(Path(path))

"""The `knownCondition` of a severity request, resolved against the condition catalogue.

Clients name the condition they are scoring either by ICD-11 coding or by
plain text ("psoriasis", "Hidradenitis suppurativa"). Text matches a
catalogue entry's display or lay text, ignoring case and punctuation; failing
that, the most general entry (shortest code) whose name contains every word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.catalogue import ICD11_SYSTEM, Catalogue, Condition

ICD11_SYSTEMS = frozenset({ICD11_SYSTEM, "http://id.who.int/icd/release/11/mms", "ICD-11", "icd-11", "icd11"})


@dataclass(frozen=True)
class ConditionProblem(Exception):
    field: tuple[str | int, ...]  # where in `knownCondition.conclusion` the problem is
    message: str
    kind: str


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def match_text(catalogue: Catalogue, text: str) -> Condition | None:
    query = _words(text)
    if not query:
        return None
    for condition in catalogue:
        if query in (_words(condition.display), _words(condition.text)):
            return condition
    wanted = set(query)
    candidates = [c for c in catalogue if wanted <= set(_words(c.display)) | set(_words(c.text))]
    return min(candidates, key=lambda c: (len(c.code), c.code)) if candidates else None


def resolve_condition(catalogue: Catalogue, text: str | None, coding: list[dict[str, str | None]] | None) -> Condition:
    """The catalogue condition a request names; raises ConditionProblem with the offending field."""
    for i, entry in enumerate(coding or []):
        system, code = entry.get("system"), entry.get("code")
        if not code:
            raise ConditionProblem(("coding", i, "code"), "the coding has no ICD-11 code", "incomplete_coding")
        if not system:
            raise ConditionProblem(("coding", i, "system"), f"the coding of {code} names no system; use {ICD11_SYSTEM}",
                                   "incomplete_coding")
        if system not in ICD11_SYSTEMS:
            continue  # other terminologies (SNOMED CT ...) may ride along; ICD-11 decides
        if code not in catalogue:
            raise ConditionProblem(("coding", i, "code"), f"{code} is not an ICD-11 code of the condition catalogue "
                                   "(GET /conditions)", "unknown_condition")
        return catalogue.get(code)
    if coding:
        raise ConditionProblem(("coding",), f"no ICD-11 coding given; add one with system {ICD11_SYSTEM}",
                               "incomplete_coding")
    found = match_text(catalogue, text or "")
    if found is None:
        raise ConditionProblem(("text",), f"{text!r} matches no condition of the catalogue (GET /conditions); "
                               "send its ICD-11 coding", "unknown_condition")
    return found

"""Severity requests to `Submission`s: one scoring system, valid body sites, a known condition the
system applies to, and every clinical input in range — all checked before anything is stored.

Every problem is reported at once, each at the field that caused it
(`body.scoringSystem.apasi.questionnaireResponse.item.surface`, `body.bodySite`, ...).
"""

from __future__ import annotations

import math
from typing import Any

from api.callbacks import checked_callback
from api.errors import ApiError, error_item
from api.intake import Loc, check_attachments
from api.schemas import (
    Answer,
    GlobalSeverityRequest,
    KnownCondition,
    LocalSeverityRequest,
    ManualSeverityRequest,
    ScoringSystemAnswers,
)
from core.jobs import AnalysisKind, CatalogueCondition, SeveritySite, SeveritySpec, TextCondition
from core.settings import Settings
from pipeline.catalogue import load_catalogue
from pipeline.severity.body_sites import BODY_SITES
from pipeline.severity.conditions import ConditionProblem, resolve_condition
from pipeline.severity.systems import SYSTEMS, ScoringSystem
from workers.job_client import Submission

LOCAL, GLOBAL, MANUAL = AnalysisKind.severity_local, AnalysisKind.severity_global, AnalysisKind.severity_manual
_TRUE, _FALSE = {"true", "yes", "y"}, {"false", "no", "n"}


class _Errors:
    """Collects 422 items so a client learns every problem of a request in one round trip."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, msg: str, type: str, loc: Loc) -> None:
        self.items.append(error_item(msg, type=type, loc=list(loc)))

    def raise_any(self) -> None:
        if self.items:
            raise ApiError(422, self.items)


def _one_system(systems: dict[str, ScoringSystemAnswers], automatic: bool,
                loc: Loc) -> tuple[ScoringSystem, ScoringSystemAnswers]:
    """The request's one scoring system, of the endpoint's kind; anything else is a 422 at once."""
    wanted = "automatic" if automatic else "manual"
    if len(systems) != 1:
        raise ApiError.one(422, f"give exactly one scoring system, got {len(systems)}", type="scoring_system_count",
                           loc=loc)
    code, answers = next(iter(systems.items()))
    system = SYSTEMS.get(code)
    if system is None:
        raise ApiError.one(422, f"unknown scoring system {code!r}; see GET /questionnaires",
                           type="unknown_scoring_system", loc=[*loc, code])
    if system.automatic != automatic:
        other = "/severity-assessment/automatic/local" if system.automatic else "/severity-assessment/manual"
        raise ApiError.one(422, f"{code} is not a {wanted} scoring system; send it to {other}",
                           type="wrong_scoring_mode", loc=[*loc, code])
    return system, answers


def _number(answer: Answer) -> float | None:
    if isinstance(answer, bool):
        return 1.0 if answer else 0.0
    if isinstance(answer, (int, float)):
        try:
            value = float(answer)
        except OverflowError:  # a JSON integer with hundreds of digits
            return None
        return value if math.isfinite(value) else None
    text = answer.strip().lower()
    if text in _TRUE or text in _FALSE:
        return 1.0 if text in _TRUE else 0.0
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _answers(system: ScoringSystem, raw: dict[str, Answer], loc: Loc, errors: _Errors,
             *, require: bool = True, whole_body: bool = False) -> dict[str, float]:
    """Numeric answers, checked against the system; AI items may be given (the client's value wins)."""
    values: dict[str, float] = {}
    for code, answer in raw.items():
        number = _number(answer)
        if number is None:
            errors.add(f"{code}: {answer!r} is not a number", "not_a_number", [*loc, code])
        else:
            values[code] = number
    for problem in system.check(values, whole_body=whole_body):
        if problem.kind == "missing":
            if not require or system.item(problem.item).source == "ai":
                continue
            # Worded as pydantic words a missing body field, so clients handle both alike.
            errors.add("Field required", "missing", [*loc, problem.item])
            continue
        errors.add(problem.message, problem.kind, [*loc, problem.item])
    return values


def _body_site(system: ScoringSystem, site: str, loc: Loc, errors: _Errors) -> None:
    if site not in BODY_SITES:
        errors.add(f"unknown body site {site!r}; see GET /body-sites", "unknown_body_site", loc)
    elif not system.allows_site(site):
        errors.add(f"{system.code} cannot score {site}; allowed: {', '.join(sorted(system.allowed_sites))}",
                   "body_site_not_allowed", loc)


def _condition(system: ScoringSystem, known: KnownCondition, loc: Loc,
               errors: _Errors) -> CatalogueCondition | TextCondition | None:
    """The condition the report names: a catalogue code, or the client's text for systems that score
    any condition ("Non-specific finding" for nsil). Questionnaires (manual systems) are not tied
    to a condition: DLQI measures quality of life whatever the disease."""
    conclusion = known.conclusion
    coding = [c.model_dump() for c in conclusion.coding] if conclusion.coding is not None else None
    try:
        condition = resolve_condition(load_catalogue(), conclusion.text, coding)
    except ConditionProblem as exc:
        if not coding and exc.kind == "unknown_condition" and system.scores_any_condition:
            return TextCondition(text=conclusion.text)
        errors.add(exc.message, exc.kind, [*loc, "conclusion", *exc.field])
        return None
    if system.automatic and not system.applies_to(condition.code):
        errors.add(f"{system.code} does not score {condition.display} ({condition.code}); it applies to "
                   f"{', '.join(system.pathologies)} (GET /questionnaires?code={system.code})",
                   "condition_not_scored", [*loc, "conclusion"])
        return None
    return CatalogueCondition(code=condition.code)


def _item_loc(loc: Loc, system: ScoringSystem) -> list[str | int]:
    return [*loc, "scoringSystem", system.code, "questionnaireResponse", "item"]


def local_submission(req: LocalSeverityRequest, settings: Settings, loc: Loc) -> Submission:
    system, answers = _one_system(req.scoringSystem, True, [*loc, "scoringSystem"])
    errors = _Errors()
    _body_site(system, req.bodySite, [*loc, "bodySite"], errors)
    condition = _condition(system, req.knownCondition, [*loc, "knownCondition"], errors)
    items = _answers(system, answers.questionnaireResponse.item, _item_loc(loc, system), errors)
    errors.raise_any()
    image = check_attachments([(req.payload.contentAttachment, [*loc, "payload", "contentAttachment"])], settings)[0]
    spec = SeveritySpec(system=system.code, mode="local", condition=condition,
                        sites=[SeveritySite(body_site=req.bodySite, items=items, image=0)])
    return Submission(kind=LOCAL, spec=spec, images=[(image, req.payload.contentAttachment.title)],
                      callback_url=checked_callback(req.callbackUrl, settings, [*loc, "callbackUrl"]))


def global_submission(req: GlobalSeverityRequest, settings: Settings, loc: Loc) -> Submission:
    system, answers = _one_system(req.scoringSystem, True, [*loc, "scoringSystem"])
    if not system.supports_global:
        raise ApiError.one(422, f"{system.code} has no whole-body combination; score each site with "
                           "/severity-assessment/automatic/local", type="no_global_score",
                           loc=[*loc, "scoringSystem", system.code])
    if len(req.payload) > settings.max_images_per_request:
        raise ApiError.one(413, f"at most {settings.max_images_per_request} images per request",
                           type="too_many_images", loc=[*loc, "payload"])
    errors = _Errors()
    condition = _condition(system, req.knownCondition, [*loc, "knownCondition"], errors)
    shared = _answers(system, answers.questionnaireResponse.item, _item_loc(loc, system), errors, require=False)
    sites: list[SeveritySite] = []
    for i, site in enumerate(req.payload):
        site_loc = [*loc, "payload", i]
        _body_site(system, site.bodySite, [*site_loc, "bodySite"], errors)
        merged = {**shared, **site.questionnaireResponse.item}
        items = _answers(system, merged, [*site_loc, "questionnaireResponse", "item"], errors, whole_body=True)
        sites.append(SeveritySite(body_site=site.bodySite, items=items, image=i))
    errors.raise_any()
    images = check_attachments(
        [(site.contentAttachment, [*loc, "payload", i, "contentAttachment"]) for i, site in enumerate(req.payload)],
        settings,
    )
    spec = SeveritySpec(system=system.code, mode="global", condition=condition, sites=sites)
    titles = [site.contentAttachment.title for site in req.payload]
    return Submission(kind=GLOBAL, spec=spec, images=list(zip(images, titles)),
                      callback_url=checked_callback(req.callbackUrl, settings, [*loc, "callbackUrl"]))


def manual_submission(req: ManualSeverityRequest, settings: Settings, loc: Loc) -> Submission:
    system, answers = _one_system(req.scoringSystem, False, [*loc, "scoringSystem"])
    errors = _Errors()
    _body_site(system, req.bodySite, [*loc, "bodySite"], errors)
    condition = (_condition(system, req.knownCondition, [*loc, "knownCondition"], errors)
                 if req.knownCondition is not None else None)
    items = _answers(system, answers.questionnaireResponse.item, _item_loc(loc, system), errors)
    errors.raise_any()
    photos = req.payload or []
    images = check_attachments(
        [(p.contentAttachment, [*loc, "payload", i, "contentAttachment"]) for i, p in enumerate(photos)], settings)
    spec = SeveritySpec(system=system.code, mode="manual", condition=condition,
                        sites=[SeveritySite(body_site=req.bodySite, items=items, image=0 if images else None)])
    return Submission(kind=MANUAL, spec=spec,
                      images=[(image, p.contentAttachment.title) for image, p in zip(images, photos)],
                      callback_url=checked_callback(req.callbackUrl, settings, [*loc, "callbackUrl"]))

"""From a request body to a `Submission`: parse, check every image, collect every error.

Nothing here writes anywhere; the caller submits only when this succeeded, so a
rejected request leaves nothing behind.
"""

from __future__ import annotations

from typing import Sequence

from api.callbacks import checked_callback
from api.errors import ApiError
from api.schemas import ContentAttachment, DiagnosisRequest
from core.jobs import AnalysisKind, DiagnosisSpec
from core.settings import Settings
from pipeline.imaging import CheckedImage, ImageRejected, check_image, decode_base64
from workers.job_client import Submission

Loc = Sequence[str | int]


def check_attachment(att: ContentAttachment, settings: Settings, loc: Loc) -> CheckedImage:
    """One image, or an ApiError whose loc points at the offending field."""
    try:
        data = decode_base64(att.data, max_bytes=settings.max_image_bytes)
        return check_image(data, declared_type=att.contentType, max_pixels=settings.max_image_pixels,
                           min_side=settings.min_image_side, max_aspect_ratio=settings.max_aspect_ratio)
    except ImageRejected as exc:
        raise ApiError.one(exc.status, str(exc), type=exc.kind, loc=[*loc, exc.field]) from None


def check_attachments(items: list[tuple[ContentAttachment, Loc]], settings: Settings) -> list[CheckedImage]:
    """All images of a request; reports every bad one. Any image over a size limit makes it a 413."""
    images, errors, status = [], [], 422
    for att, loc in items:
        try:
            images.append(check_attachment(att, settings, loc))
        except ApiError as exc:
            errors += exc.items
            if exc.status == 413:
                status = 413
    if errors:
        raise ApiError(status, errors)
    return images


def diagnosis_submission(req: DiagnosisRequest, settings: Settings, loc: Loc) -> Submission:
    if len(req.payload) > settings.max_images_per_request:
        raise ApiError.one(
            413, f"at most {settings.max_images_per_request} images per request", type="too_many_images",
            loc=[*loc, "payload"],
        )
    atts = [(p.contentAttachment, [*loc, "payload", i, "contentAttachment"]) for i, p in enumerate(req.payload)]
    images = check_attachments(atts, settings)
    titles = [p.contentAttachment.title for p in req.payload]
    return Submission(kind=AnalysisKind.diagnosis, spec=DiagnosisSpec(), images=list(zip(images, titles)),
                      callback_url=checked_callback(req.callbackUrl, settings, [*loc, "callbackUrl"]))

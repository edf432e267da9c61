"""A request's `callbackUrl`, checked against the server-side request forgery guard (workers/webhooks.py).

Resolving the host blocks, so this runs where the images are checked: in the threadpool.
"""

from __future__ import annotations

from api.errors import ApiError
from core.settings import Settings
from workers.webhooks import UnsafeUrl, check_url

Loc = list[str | int]


def checked_callback(url: str | None, settings: Settings, loc: Loc) -> str | None:
    """The URL when dermq may call it; a 422 at `loc` saying why not otherwise."""
    if url is None:
        return None
    try:
        check_url(url, settings)
    except UnsafeUrl as exc:
        raise ApiError.one(422, str(exc), type="callback_url_refused", loc=loc) from None
    return url

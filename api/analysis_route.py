"""The shared synchronous/asynchronous face of every analysis endpoint (SPEC §2.10).

Analysis requests carry megabytes of base64, so their routes (`AnalysisRoute`) keep
the event loop free: the JSON body is parsed on a worker thread in small steps, and
the routes check the images (base64 and a full decode) in the threadpool too.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterator

import ijson
from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from api import fhir
from api.errors import ApiError, error_item
from core.jobs import Job, JobErrorKind, JobStatus
from api.job_reader import JobReader
from core.settings import Settings
from workers.job_client import IdempotencyConflict, JobClient, Submission, SubmitError

# The pure-Python ijson backend on purpose: it runs bytecode between pieces, so the interpreter lock
# passes to the event loop every millisecond or so. `json.loads` (and ijson's C backend) hold it for the
# whole document, about 0.2 s for a 40 MB request; the C backend also rescans a long string on every
# chunk, which is quadratic in an image's length.
_JSON = ijson.get_backend("python")
_PARSED = b"(parsed as it arrived)"
_TOKENS_PIECE = 1 << 20  # outside strings, bytes handed to the parser at once
JSON_VALUES_PER_ITEM = 1000  # see max_json_values


def _quote_spans(chunks: list[bytes]) -> Iterator[bytes]:
    """The body (its chunks consumed) re-cut just after every double quote.

    Only for speed, any cut parses the same: the pure-Python lexer keeps one growing buffer until
    a piece ends between two lexemes, so a base64 string arriving in 40 chunks would be copied 40
    times over, and with it everything since the last such piece. Cut after each quote, a string
    arrives whole and the buffer starts afresh after it. Runs of tokens without quotes are cut at
    `_TOKENS_PIECE`, and only between strings (by quote parity; an escaped quote merely makes a cut
    less well placed).
    """
    pending: list[bytes] = []
    size = quotes = 0
    chunks.reverse()
    while chunks:  # popped as cut: the raw body is freed while the value grows
        chunk = chunks.pop()
        start = 0
        while (end := chunk.find(b'"', start)) != -1:
            pending.append(chunk[start : end + 1])
            yield b"".join(pending)
            pending.clear()
            size, quotes, start = 0, quotes + 1, end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
            size += len(chunk) - start
        if size >= _TOKENS_PIECE and quotes % 2 == 0:
            yield b"".join(pending)
            pending.clear()
            size = 0
    if pending:
        yield b"".join(pending)


def max_json_values(settings: Settings) -> int:
    """JSON values (numbers, strings, keys, brackets) one request may hold: far above any real request
    (a full batch of questionnaires is a few tens of thousands), so a body of nothing but tokens
    cannot keep a thread parsing for minutes and fill memory with small objects."""
    return JSON_VALUES_PER_ITEM * max(settings.max_images_per_request, settings.max_batch_items)


def parse_json_chunks(chunks: list[bytes], max_values: int) -> Any:
    """The JSON value of a body given as its chunks (consumed), for a worker thread.

    Raises `json.JSONDecodeError` (FastAPI's 422) for anything that is not RFC 8259 JSON, which
    `json.loads` would partly let through: NaN and Infinity, and strings with unpaired surrogates
    (§8.2), which could not even be written back in an error message. An HTTP 413 past `max_values`.
    """
    events = ijson.sendable_list()
    parser = _JSON.basic_parse_coro(events, use_float=True)
    builder = ijson.ObjectBuilder()
    offset = values = 0
    try:
        for piece in _quote_spans(chunks):
            parser.send(piece)
            offset += len(piece)
            values += _build(builder, events)
            if values > max_values:
                raise HTTPException(413, [error_item(f"request body has more than {max_values} JSON values",
                                                     type="too_many_values", loc=["body"])])
        parser.close()
        _build(builder, events)
    except (ijson.JSONError, ValueError, RecursionError) as exc:
        reason = str(exc).partition("\n")[0] or type(exc).__name__
        raise json.JSONDecodeError(reason, "", offset) from None
    return builder.value


def _build(builder: ijson.ObjectBuilder, events: list[tuple[str, Any]]) -> int:
    count = len(events)
    for event, value in events:
        if isinstance(value, str) and not value.isascii():
            value.encode("utf-8")  # UnicodeEncodeError (a ValueError) on a lone surrogate
        builder.event(event, value)
    events.clear()
    return count


def _is_json(content_type: str | None) -> bool:
    """FastAPI's own test: application/json or application/*+json."""
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


class _StreamedJsonRequest(Request):
    async def body(self) -> bytes:
        # FastAPI reads body() only to see whether one was sent, then json(): a JSON body is parsed
        # here and its raw bytes are not kept (nor joined into one 40 MB copy on the event loop).
        if hasattr(self, "_body") or not _is_json(self.headers.get("content-type")):
            return await super().body()
        chunks = [chunk async for chunk in self.stream() if chunk]
        if chunks:
            settings = self.app.state.services.settings
            self._json = await run_in_threadpool(parse_json_chunks, chunks, max_json_values(settings))
        self._body = _PARSED if hasattr(self, "_json") else b""
        return self._body


class AnalysisRoute(APIRoute):
    """A route whose JSON body is parsed off the event loop; its models and OpenAPI schema are unchanged."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()

        async def parse_off_the_loop(request: Request) -> Response:
            return await handler(_StreamedJsonRequest(request.scope, request.receive))

        return parse_off_the_loop


def _preferences(request: Request) -> dict[str, str]:
    """RFC 7240 `Prefer` header: `respond-async`, `wait=<seconds>`."""
    prefs: dict[str, str] = {}
    for token in request.headers.get("prefer", "").replace(";", ",").split(","):
        name, _, value = token.strip().partition("=")
        if name:
            prefs[name.lower()] = value.strip().strip('"')
    return prefs


def wait_budget(request: Request, default_s: float) -> float:
    """Seconds to wait for the report: 0 for respond-async, else min(wait=, the configured time)."""
    prefs = _preferences(request)
    if "respond-async" in prefs:
        return 0.0
    try:
        return max(0.0, min(default_s, float(prefs["wait"]))) if "wait" in prefs else default_s
    except ValueError:
        return default_s


def accepted(job: Job) -> JSONResponse:
    return JSONResponse(
        {"id": job.id, "status": job.status.value},
        status_code=202,
        headers={"Location": f"/jobs/{job.id}", "Retry-After": "1"},
    )


async def submit(jobs: JobClient, client: str, submission: Submission, *, idempotency_key: str | None = None,
                 interactive: bool = True, batch_id: str | None = None) -> tuple[Job, bool]:
    try:
        return await run_in_threadpool(
            jobs.submit, client, submission, interactive=interactive, batch_id=batch_id, idempotency_key=idempotency_key
        )
    except IdempotencyConflict as exc:
        raise ApiError.one(409, str(exc), type="idempotency_conflict", loc=["header", "Idempotency-Key"]) from None
    except SubmitError as exc:
        raise ApiError.one(503, f"service unavailable, try again shortly ({exc})", type="unavailable",
                           headers={"Retry-After": "5"}) from None


class FhirJSONResponse(JSONResponse):
    media_type = fhir.FHIR_JSON


async def report_response(request: Request, report: bytes) -> Response:
    """A finished report as its stored bytes, or as a FHIR R4 Bundle when Accept asks for application/fhir+json."""
    if not fhir.wants_fhir(request.headers.get("accept")):
        return Response(report, media_type="application/json")
    # Converted and rendered on a worker thread: a multi-image bundle has a thousand entries.
    return await run_in_threadpool(lambda: FhirJSONResponse(fhir.to_bundle(json.loads(report)), headers={"Vary": "Accept"}))


def result_or_error(jobs: JobClient, job: Job) -> bytes:
    """The stored report of a succeeded job; the right error for any other status."""
    if job.status is JobStatus.succeeded:
        return jobs.result_bytes(job)
    if job.status is JobStatus.failed:
        raise ApiError.one(409, f"job failed: {job.error}", type="job_failed", loc=["path", "id"])
    raise ApiError.one(409, f"job is {job.status.value}", type=f"job_{job.status.value}", loc=["path", "id"])


async def respond(jobs: JobClient, reader: JobReader, client: str, submission: Submission, request: Request,
                  sync_timeout_s: float):
    job, _ = await submit(jobs, client, submission, idempotency_key=request.headers.get("idempotency-key"))
    budget = wait_budget(request, sync_timeout_s)
    if budget <= 0:
        return accepted(job)
    finished = await reader.wait(client, job.id, budget)  # woken by the job's end, not a timer
    if finished is None:
        return accepted(job)  # still working: never hang, hand over to polling
    if finished.status is JobStatus.failed:
        kind = finished.error_kind or JobErrorKind.internal  # a record from before kinds were recorded
        headers = {"Retry-After": "5"} if kind is JobErrorKind.outage else None
        raise ApiError.one(kind.http_status, f"analysis failed: {finished.error}", type="job_failed", loc=["body"],
                           headers=headers)
    return await report_response(request, await run_in_threadpool(result_or_error, jobs, finished))

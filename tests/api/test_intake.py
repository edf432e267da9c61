"""Every rejected input is a clear 4xx, and leaves nothing behind: no stored object, no job."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from support import SAMPLE_IMAGES, attachment, image_b64

pytestmark = pytest.mark.slow

LOC = ["body", "payload", 0, "contentAttachment"]


def png(size=(32, 32), mode="RGB") -> str:
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode()


def gif() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "GIF")
    return base64.b64encode(buf.getvalue()).decode()


def stored_objects(service) -> set[str]:
    root = service.settings.effective_storage_dir
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


CASES = [
    ("data-uri", {"payload": [{"contentAttachment": {"data": "data:image/jpeg;base64," + image_b64(SAMPLE_IMAGES[0])}}]},
     422, LOC + ["data"]),
    ("not-base64", {"payload": [{"contentAttachment": {"data": "%%%not base64%%%"}}]}, 422, LOC + ["data"]),
    ("gif", {"payload": [{"contentAttachment": {"data": gif()}}]}, 422, LOC + ["data"]),
    ("type-mismatch", {"payload": [{"contentAttachment": {"data": png(), "contentType": "image/jpeg"}}]}, 422,
     LOC + ["contentType"]),
    ("unknown-type", {"payload": [{"contentAttachment": {"data": png(), "contentType": "text/plain"}}]}, 422,
     LOC + ["contentType"]),
    ("truncated", {"payload": [{"contentAttachment": {"data": base64.b64encode(
        SAMPLE_IMAGES[0].read_bytes()[:5000]).decode()}}]}, 422, LOC + ["data"]),
    ("bomb", {"payload": [{"contentAttachment": {"data": png((5000, 5000), "L")}}]}, 413, LOC + ["data"]),
    ("too-many-bytes", {"payload": [{"contentAttachment": {"data": base64.b64encode(b"\xff\xd8\xff" + b"0" * 3_100_000).decode()}}]},
     413, LOC + ["data"]),
    ("no-images", {"payload": []}, 422, ["body", "payload"]),
    ("missing-data", {"payload": [{"contentAttachment": {"title": "x"}}]}, 422, LOC + ["data"]),
    ("too-many-images", {"payload": [attachment(SAMPLE_IMAGES[0])] * 17}, 413, ["body", "payload"]),
]


@pytest.mark.parametrize("name, body, status, loc", CASES, ids=[c[0] for c in CASES])
def test_rejected_input(service, api, name, body, status, loc) -> None:
    before_objects = stored_objects(service)
    before_jobs = api.get("/jobs", params={"limit": 500}).json()["total"]
    r = api.post("/diagnosis-support", json=body)
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == loc and detail[0]["msg"]
    assert stored_objects(service) == before_objects
    assert api.get("/jobs", params={"limit": 500}).json()["total"] == before_jobs


def test_a_bad_image_among_good_ones_rejects_the_request_and_names_it(service, api) -> None:
    before = stored_objects(service)
    body = {"payload": [attachment(SAMPLE_IMAGES[13]), {"contentAttachment": {"data": gif()}}]}
    r = api.post("/diagnosis-support", json=body)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:3] == ["body", "payload", 1]
    assert stored_objects(service) == before


def test_poor_quality_image_is_not_an_http_error(api) -> None:
    img = Image.open(SAMPLE_IMAGES[14]).convert("RGB")
    dark = Image.eval(img, lambda v: v // 10)
    buf = io.BytesIO()
    dark.save(buf, "JPEG")
    r = api.post("/diagnosis-support", json={"payload": [{"contentAttachment": {
        "data": base64.b64encode(buf.getvalue()).decode(), "contentType": "image/jpeg"}}]})
    assert r.status_code == 200
    mv = r.json()["imagingAnalysis"][0]["mediaValidity"]
    assert mv["isValid"] is False and mv["quality"]["metrics"]["exposure"]["acceptable"] is False
    assert mv["quality"]["metrics"]["exposure"]["hint"]

from __future__ import annotations

import json

import pytest

from support import SAMPLE_IMAGES, attachment

pytestmark = pytest.mark.slow


def test_one_bad_item_does_not_sink_the_others(api) -> None:
    items = [
        {"kind": "diagnosis-support", "body": {"payload": [attachment(SAMPLE_IMAGES[11])]}, "reference": "good-1"},
        {"kind": "diagnosis-support", "body": {"payload": [{"contentAttachment": {"data": "data:image/png;base64,AAAA"}}]},
         "reference": "bad"},
        {"kind": "diagnosis-support", "body": {"payload": [attachment(SAMPLE_IMAGES[12])]}, "reference": "good-2"},
    ]
    r = api.post("/batches", json={"items": items})
    assert r.status_code == 202, r.text
    batch = r.json()
    assert r.headers["location"] == f"/batches/{batch['id']}"
    assert [j["reference"] for j in batch["jobs"]] == ["good-1", "good-2"]
    (rejected,) = batch["rejected"]
    assert rejected["index"] == 1 and rejected["reference"] == "bad"
    assert rejected["detail"][0]["loc"] == ["body", "items", 1, "body", "payload", 0, "contentAttachment", "data"]

    lines = []
    with api.stream("GET", f"/batches/{batch['id']}/results", params={"timeout": 120}) as stream:
        assert stream.headers["content-type"].startswith("application/x-ndjson")
        for line in stream.iter_lines():
            if line:
                lines.append(json.loads(line))
    assert sorted(l["reference"] for l in lines) == ["good-1", "good-2"]
    assert all(l["status"] == "succeeded" and l["result"]["resourceType"] == "DiagnosticReport" for l in lines)

    state = api.get(f"/batches/{batch['id']}").json()
    assert state["done"] and state["total"] == 2 and state["counts"]["succeeded"] == 2
    assert {j["batchId"] for j in state["jobs"]} == {batch["id"]}


def test_a_batch_of_only_bad_items_is_422(api) -> None:
    items = [{"kind": "diagnosis-support", "body": {"payload": []}}]
    r = api.post("/batches", json={"items": items})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][:4] == ["body", "items", 0, "body"]


def test_unknown_kind_and_unknown_batch(api) -> None:
    r = api.post("/batches", json={"items": [{"kind": "astrology", "body": {}}]})
    assert r.status_code == 422
    assert api.get("/batches/00000000-0000-0000-0000-000000000000").status_code == 404

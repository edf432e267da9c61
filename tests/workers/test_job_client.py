"""A submission's idempotency fingerprint: typed specs keep the fingerprints their plain dicts had."""

from __future__ import annotations

import hashlib
import json

import pytest

from core.jobs import SPEC_MODELS, AnalysisKind, StoredImage
from workers.job_client import Submission

# Specs as the API built them when they were plain dicts (images are attached later, outside the fingerprint).
DICT_SPECS = [
    (AnalysisKind.diagnosis, {}),
    (AnalysisKind.severity_local, {"system": "apasi", "mode": "local", "condition": {"code": "EA90"},
                                   "sites": [{"bodySite": "armLeft", "items": {"surface": 2.0, "itch": 0.5}, "image": 0}]}),
    (AnalysisKind.severity_global, {"system": "nsil", "mode": "global", "condition": {"text": "Non-specific finding"},
                                    "sites": [{"bodySite": "armLeft", "items": {}, "image": 0},
                                              {"bodySite": "legLeft", "items": {"surface": 1.0}, "image": 1}]}),
    (AnalysisKind.severity_manual, {"system": "dlqi", "mode": "manual", "condition": None,
                                    "sites": [{"bodySite": "armLeft", "items": {"q1": 3.0}, "image": None}]}),
]


@pytest.mark.parametrize(("kind", "spec"), DICT_SPECS, ids=[k.value for k, _ in DICT_SPECS])
def test_a_typed_spec_fingerprints_as_the_dict_it_replaced(kind: AnalysisKind, spec: dict) -> None:
    before = hashlib.sha256(kind.encode())
    before.update(json.dumps(spec, sort_keys=True).encode())
    typed = SPEC_MODELS[kind].model_validate(spec)
    assert Submission(kind=kind, spec=typed).fingerprint() == before.hexdigest()
    image = StoredImage(key="inputs/c/x.jpg", content_type="image/jpeg", width=1, height=1)
    with_images = typed.model_copy(update={"images": [image]})  # as the record stores it
    assert Submission(kind=kind, spec=with_images).fingerprint() == before.hexdigest()

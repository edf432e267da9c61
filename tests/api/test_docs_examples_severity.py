"""The severity page's example clients (../shared/api-docs), run unchanged against a running dermq.

Placeholders are filled as an integrator would after reading the discovery endpoints:
`apasi`, a real body site, the condition's plain text, and apasi's one clinical item (`surface`, a
percentage of the body zone, reported back as its area score).
"""

from __future__ import annotations

import shutil
import textwrap

import pytest

from support import SAMPLE_IMAGES, Service, image_b64, run_curl, run_example

PYTHON_EXAMPLE = textwrap.dedent('''\
    import requests
    import base64
    base_url = "<base_url>"
    url = f"{base_url}/severity-assessment/automatic/local"
    image_path = "<path_to_image>"
    with open(image_path, "rb") as f:
    image_data = base64.b64encode(f.read()).decode("utf-8")
    # bodySite, scoringSystem code, and questionnaireResponse.item are discovered from
    # helper endpoints at integration time see "Shared schema".
    json_payload = {
    "payload": {
    "contentAttachment": {
    "data": image_data,
    "contentType": "image/jpeg"
    }
    },
    "bodySite": "<body_site_code>",
    "knownCondition": {
    "conclusion": { "text": "<plain-text condition>" }
    },
    "scoringSystem": {
    "<scoring_system_code>": {
    "questionnaireResponse": {
    "item": { "<item_code>": "<answer_value>" }
    }
    }
    }
    }
    headers = {
    "Content-Type": "application/json",
    "Authorization": "Bearer <access_token>"
    }
    response = requests.post(url, json=json_payload, headers=headers)
    result = response.json()
''')
# The page's extraction lost the indentation of the `with` body; Python needs it back.
PYTHON_EXAMPLE = PYTHON_EXAMPLE.replace('"rb") as f:\nimage_data', '"rb") as f:\n    image_data')

JS_EXAMPLE = textwrap.dedent('''\
    const fs = require("fs");
    const baseUrl = "<base_url>";
    const imagePath = "<path_to_image>";
    const imageData = fs.readFileSync(imagePath).toString("base64");
    // bodySite, scoringSystem code, and questionnaireResponse.item are discovered from
    // helper endpoints at integration time see "Shared schema".
    const json_payload = {
    payload: {
    contentAttachment: { data: imageData, contentType: "image/jpeg" },
    },
    bodySite: "<body_site_code>",
    knownCondition: { conclusion: { text: "<plain-text condition>" } },
    scoringSystem: {
    "<scoring_system_code>": {
    questionnaireResponse: {
    item: { "<item_code>": "<answer_value>" },
    },
    },
    },
    };
    const response = await fetch(`${baseUrl}/severity-assessment/automatic/local`, {
    method: "POST",
    headers: {
    "Content-Type": "application/json",
    Authorization: "Bearer <access_token>",
    },
    body: JSON.stringify(json_payload),
    });
    const result = await response.json();
''')

CURL_BODY = textwrap.dedent('''\
    {
    "payload": { "contentAttachment": { "data": "<base64_encoded_image_data>" } },
    "bodySite": "<body_site_code>",
    "knownCondition": { "conclusion": { "text": "<plain-text condition>" } },
    "scoringSystem": {
    "<scoring_system_code>": {
    "questionnaireResponse": {
    "item": { "<item_code>": "<answer_value>" }
    }
    }
    }
    }''')


def fill(code: str, service: Service) -> str:
    return (code.replace("<base_url>", service.url)
                .replace("<path_to_image>", str(SAMPLE_IMAGES[0]))
                .replace("<access_token>", service.token())
                .replace("<body_site_code>", "armLeft")
                .replace("<plain-text condition>", "psoriasis")
                .replace("<scoring_system_code>", "apasi")
                .replace("<item_code>", "surface")
                .replace("<answer_value>", "30"))


def check_report(result: dict) -> None:
    assert result["resourceType"] == "DiagnosticReport", result
    assert result["mediaValidity"]["isValid"] is True
    evolution = result["patientEvolution"]
    assert {k for k, v in evolution.items() if v is not None} == {"apasi"} and "pasi" in evolution
    apasi = evolution["apasi"]
    surface = apasi["item"]["surface"]
    assert surface["value"] == 3 and "additionalData" not in surface  # 30 % of the zone: area score 3
    assert all("aiConfidence" in apasi["item"][k]["additionalData"] for k in apasi["item"] if k != "surface")
    assert set(apasi["media"]["attachment"]) == {"maskRaw", "maskBinary", "segmentation"}
    assert apasi["score"]["interpretation"]["intensity"] in (0, 1, 2, 3)


@pytest.mark.slow
def test_python_example_unchanged(service: Service, tmp_path) -> None:
    check_report(run_example("python", fill(PYTHON_EXAMPLE, service), tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_example_unchanged(service: Service, tmp_path) -> None:
    body = fill(CURL_BODY, service).replace("<base64_encoded_image_data>", image_b64(SAMPLE_IMAGES[1]))
    check_report(run_curl(f"{service.url}/severity-assessment/automatic/local", service.token(), body, tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_javascript_example_unchanged(service: Service, tmp_path) -> None:
    check_report(run_example("javascript", fill(JS_EXAMPLE, service), tmp_path))

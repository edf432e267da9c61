"""The reference API's example clients (../shared/api-docs), run unchanged against a running dermq.

Only the documented placeholders are filled in; the code between them is the page's code.
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
    url = f"{base_url}/diagnosis-support"
    # Encode each image you want to analyse. Multiple images can be sent in
    # the same request: each image becomes a separate item in `payload[]`.
    image_path = "<path_to_image>" # e.g. "lesion_image.jpg"
    with open(image_path, "rb") as f:
        image_data = base64.b64encode(f.read()).decode("utf-8")
    json_payload = {
    "payload": [
    {
    "contentAttachment": {
    "data": image_data, # required base64-encoded image bytes
    "title": "Lesion close-up", # optional free-text label for the image
    "contentType": "image/jpeg" # optional defaults to image/png
    }
    }
    # Add more {"contentAttachment": {...}} items here for additional images.
    ]
    }
    headers = {
    "Content-Type": "application/json",
    "Authorization": "Bearer <access_token>" # obtained from /login
    }
    response = requests.post(url, json=json_payload, headers=headers)
    result = response.json()
''')

JS_EXAMPLE = textwrap.dedent('''\
    const fs = require("fs");
    const baseUrl = "<base_url>";
    const imagePath = "<path_to_image>"; // e.g. "lesion_image.jpg"
    const imageData = fs.readFileSync(imagePath).toString("base64");
    const json_payload = {
    payload: [
    {
    contentAttachment: {
    data: imageData, // required base64-encoded image bytes
    title: "Lesion close-up", // optional free-text label for the image
    contentType: "image/jpeg", // optional defaults to image/png
    },
    },
    // Add more entries for additional images.
    ],
    };
    const response = await fetch(`${baseUrl}/diagnosis-support`, {
    method: "POST",
    headers: {
    "Content-Type": "application/json",
    Authorization: "Bearer <access_token>",
    },
    body: JSON.stringify(json_payload),
    });
    const result = await response.json();
''')


def fill(code: str, service: Service) -> str:
    return (code.replace("<base_url>", service.url)
                .replace("<path_to_image>", str(SAMPLE_IMAGES[0]))
                .replace("<access_token>", service.token()))


def check_report(result: dict) -> None:
    assert result["resourceType"] == "DiagnosticReport", result
    assert result["imagingAnalysis"][0]["mediaValidity"]["isValid"] is True
    assert len(result["conclusion"]) > 100
    assert "heatMap" in result["imagingAnalysis"][0]["conclusion"][0]["explainability"]


@pytest.mark.slow
def test_python_example_unchanged(service: Service, tmp_path) -> None:
    check_report(run_example("python", fill(PYTHON_EXAMPLE, service), tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_example_unchanged(service: Service, tmp_path) -> None:
    # The page's command with its placeholders filled; the image goes through a file because of its size.
    body = ('{\n"payload": [{\n"contentAttachment": {\n"data": "<base64_encoded_image_data>",\n'
            '"title": "Lesion close-up",\n"contentType": "image/jpeg"\n}\n}]\n}')
    body = body.replace("<base64_encoded_image_data>", image_b64(SAMPLE_IMAGES[1]))
    check_report(run_curl(f"{service.url}/diagnosis-support", service.token(), body, tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_javascript_example_unchanged(service: Service, tmp_path) -> None:
    check_report(run_example("javascript", fill(JS_EXAMPLE, service), tmp_path))

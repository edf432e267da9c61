"""The reference API's example clients (../shared/api-docs), run unchanged against a running dermq.

Only the documented placeholders are filled in; the code between them is the page's code.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from support import SAMPLE_IMAGES, Service, image_b64

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
    script = tmp_path / "example.py"
    script.write_text(fill(PYTHON_EXAMPLE, service) + "import json, sys\njson.dump(result, sys.stdout)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True)
    check_report(json.loads(out.stdout))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_example_unchanged(service: Service, tmp_path) -> None:
    # The page's command with its placeholders filled; the image goes through a file because of its size.
    body = ('{\n"payload": [{\n"contentAttachment": {\n"data": "<base64_encoded_image_data>",\n'
            '"title": "Lesion close-up",\n"contentType": "image/jpeg"\n}\n}]\n}')
    body = body.replace("<base64_encoded_image_data>", image_b64(SAMPLE_IMAGES[1]))
    (tmp_path / "body.json").write_text(body)
    cmd = ['curl', '-s', '-X', 'POST', f'{service.url}/diagnosis-support',
           '-H', 'Content-Type: application/json',
           '-H', f'Authorization: Bearer {service.token()}',
           '-d', f'@{tmp_path / "body.json"}']
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)
    check_report(json.loads(out.stdout))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed")
def test_javascript_example_unchanged(service: Service, tmp_path) -> None:
    # ES module so top-level await works; `require` is provided as in CommonJS.
    preamble = 'import { createRequire } from "module";\nconst require = createRequire(import.meta.url);\n'
    script = tmp_path / "example.mjs"
    script.write_text(preamble + fill(JS_EXAMPLE, service) + "process.stdout.write(JSON.stringify(result));\n")
    out = subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=120, check=True)
    check_report(json.loads(out.stdout))

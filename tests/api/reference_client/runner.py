"""Replays the scenarios over HTTP as the reference client would, recording every check."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import httpx

from . import images
from .checks import Checks, ScenarioChecks
from .parser import Parsed, ParserError, parse_diagnosis, parse_login, parse_severity
from .scenarios import (APASI_SDK_SURFACE, DIAG_CONFIDENCE_TEXTS, GSC_TEXT, HEATMAP_TITLE, ICD, Scenario,
                        local_valid_body, manual_valid_body, remove_by_dot_path, scoring_system)

TIMEOUT_S = 180.0  # RequestOptions(timeout) in the reference suite


def client_for(base_url: str) -> httpx.Client:
    """One base URL, relative paths without a leading slash (Symfony's createForBaseUri)."""
    return httpx.Client(base_url=base_url.rstrip("/") + "/", timeout=TIMEOUT_S, follow_redirects=False)


def login(http: httpx.Client, username: str, password: str) -> httpx.Response:
    return http.post("login", data={"username": username, "password": password},
                     headers={"Content-Type": "application/x-www-form-urlencoded"})


class Runner:
    def __init__(self, http: httpx.Client, username: str, password: str, checks: Checks | None = None):
        self.http, self.username, self.password = http, username, password
        self.checks = checks or Checks()
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            r = login(self.http, self.username, self.password)
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def post_json(self, path: str, body: Any) -> httpx.Response:
        content = json.dumps(body, ensure_ascii=False).encode()
        return self.http.post(path, content=content, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {self.token()}"})

    def run(self, scenario: Scenario) -> ScenarioChecks:
        c = self.checks.scenario(scenario.name)
        try:
            getattr(self, "_" + scenario.kind.replace("-", "_"))(scenario, c)
        except httpx.HTTPError as exc:
            c("request completed", False, detail=f"{type(exc).__name__}: {exc}")
        return c

    # --- helpers ---
    def _parse(self, c: ScenarioChecks, parser, body: Any) -> Any:
        try:
            parsed: Parsed = parser(body)
        except ParserError as exc:
            self.checks.parser_throws.append((c.name, str(exc)))
            c("reference parser: no TypeError/ValueError", False, detail=str(exc))
            return None
        c("reference parser: no TypeError/ValueError", True)
        for w in parsed.warnings:
            self.checks.parser_warnings.append((c.name, w))
        c("reference parser: no PHP warnings :: (failOnWarning)", not parsed.warnings, detail="; ".join(parsed.warnings[:5]))
        return parsed.value

    @staticmethod
    def _json(c: ScenarioChecks, r: httpx.Response) -> Any:
        try:
            return r.json()
        except ValueError:
            c("response body is JSON", False, detail=r.text[:200])
            return None

    @staticmethod
    def _status(c: ScenarioChecks, r: httpx.Response, expected: int) -> bool:
        return c(f"HTTP {expected}", r.status_code == expected,
                 detail=f"got {r.status_code}: {r.text[:300]}")

    @staticmethod
    def _envelope(c: ScenarioChecks, v: dict[str, Any]) -> None:
        c.eq("resourceType", v["resourceType"], "DiagnosticReport")
        c.eq("status", v["status"], "preliminary")
        c("analysisDuration > 0", v["analysisDuration"] > 0, detail=v["analysisDuration"])
        issued = v["issued"]
        days = {datetime.now().date(), datetime.now(timezone.utc).date()}
        c("issued is today", issued.date() in days, detail=issued.isoformat())

    @staticmethod
    def _code_of(c: ScenarioChecks, what: str, code: dict[str, Any], key: str, text: str | None) -> None:
        if text is not None:
            c.eq(f"{what} code.text :: {key}", code["text"], text)
        c(f"{what} code.coding has exactly one entry :: {key}", len(code["coding"]) == 1, detail=code["coding"])
        if code["coding"]:
            c.eq(f"{what} code.coding[0].code is the key :: {key}", code["coding"][0]["code"], key)

    # --- scenario kinds ---
    def _login(self, s: Scenario, c: ScenarioChecks) -> None:
        if s.username is not None:
            r = login(self.http, s.username, s.password or "")
            c("wrong credentials: any status but 200", r.status_code != 200, detail=r.status_code)
            return
        r = login(self.http, self.username, self.password)
        if not self._status(c, r, 200):
            return
        v = self._parse(c, parse_login, self._json(c, r))
        if v is None:
            return
        c("expires_in_minutes > 0", v["expiresInMinutes"] > 0, detail=v["expiresInMinutes"])
        c("access_token non-empty", bool(v["value"]))
        c.eq("token_type is 'Bearer token' (reference suite; SPEC: 'Bearer')", v["tokenType"], "Bearer token",
             category="spec-deviation")

    def _device(self, s: Scenario, c: ScenarioChecks) -> None:
        r = self.http.get(s.path, headers={"Authorization": f"Bearer {self.token()}"})
        if not self._status(c, r, 200):
            return
        body = self._json(c, r)
        if not c("body is a JSON object", isinstance(body, dict), detail=type(body).__name__):
            return
        # The reference client returns this body undecoded, and its suite's only test of it compares the
        # vendor's identity in the vendor's Device-like shape: all of it is counted as identity. dermq
        # answers SPEC's shape (`name` and `version` strings, the model bundles) with its own identity.
        manufacturer = body.get("manufacturer")
        c("manufacturer is an object with name and address", isinstance(manufacturer, dict)
          and "name" in manufacturer and "address" in manufacturer, "identity", manufacturer)
        for key in ("name", "version"):
            value = body.get(key)
            c(f"{key} is a non-empty list of {{value}} :: {key}", isinstance(value, list) and bool(value)
              and all(isinstance(e, dict) and "value" in e for e in value), "identity", value)
        # The reference suite compares these with its vendor's own identity, which dermq never copies:
        # dermq passes by naming itself in each place.
        m = manufacturer if isinstance(manufacturer, dict) else {}
        c("manufacturer.name (own identity)", isinstance(m.get("name"), str) and m.get("name"), "identity", m.get("name"))
        c("manufacturer.address (own identity)", isinstance(m.get("address"), str) and m.get("address"), "identity",
          m.get("address"))
        for key in ("name", "version"):
            value = body.get(key)
            first = value[0].get("value") if isinstance(value, list) and value and isinstance(value[0], dict) else None
            c(f"{key}[0].value (own identity)", isinstance(first, str) and first, "identity", first)

    def _severity_body(self, s: Scenario) -> dict[str, Any]:
        payload = {"contentAttachment": {"data": images.b64(s.image)}}
        return {"payload": payload if s.kind == "local" else [payload], "bodySite": s.body_site,
                "knownCondition": s.condition.sdk_json(), "scoringSystem": scoring_system(s.system, s.answers)}

    def _evolution(self, s: Scenario, c: ScenarioChecks) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Send the scenario's severity request; the parsed report and its system's entry, once checked."""
        r = self.post_json(s.path, self._severity_body(s))
        if s.expected_status != 200:
            self._status(c, r, s.expected_status)
            return None
        if not self._status(c, r, 200):
            return None
        v = self._parse(c, parse_severity, self._json(c, r))
        if v is None:
            return None
        self._envelope(c, v)
        inst = v["patientEvolution"].get(s.system)
        if not c(f"patientEvolution.{s.system} populated", inst is not None, detail=list(v["patientEvolution"])):
            return None
        return v, inst

    def _local(self, s: Scenario, c: ScenarioChecks) -> None:
        parsed = self._evolution(s, c)
        if parsed is None:
            return
        v, inst = parsed
        score = inst["score"]
        c(f"score.value {s.score}", s.score.holds(score["value"]), "clinical", score["value"])
        c.eq("score category", score["category"], s.category, "clinical")
        c.eq("score intensity", score["intensity"], s.intensity, "clinical")
        if s.expect_gsc:
            gsc = score["globalScoreContribution"]
            if c("score.additionalData.globalScoreContribution present", gsc is not None):
                c(f"globalScoreContribution.value {s.gsc}", s.gsc.holds(gsc["value"]), "clinical", gsc["value"])
                c.eq("globalScoreContribution code.text", gsc["code"]["text"], GSC_TEXT)
                first = gsc["code"]["coding"][0]["code"] if gsc["code"]["coding"] else None
                c.eq("globalScoreContribution code.coding[0].code", first, "globalScoreContribution")
        self._items(s, c, inst["item"])
        self._attachments(s, c, inst["media"]["attachment"])
        if s.detections:
            self._detections(s, c, inst["media"]["detection"])

    def _items(self, s: Scenario, c: ScenarioChecks, items: dict[str, Any] | None) -> None:
        if s.items is None:
            c("item is null", items is None, detail=None if items is None else list(items))
            return
        if not c("item is an object", items is not None):
            return
        for exp in s.items:
            got = items.get(exp.key)
            if not c(f"item present :: {exp.key}", got is not None, detail=list(items)):
                continue
            self._code_of(c, "item", got["code"], exp.key, exp.text)
            value_category = exp.value_category or ("contract" if exp.client else "clinical")
            if exp.value is not None:
                expected = float(exp.value)  # booleans compare loosely: the parser casts to float
                c(f"item value == {exp.value!r} :: {exp.key}", got["value"] == expected, value_category, got["value"])
            if exp.at_least is not None:
                c(f"item value >= {exp.at_least:g} :: {exp.key}", got["value"] >= exp.at_least, value_category,
                  got["value"])
            if s.system == "apasi" and exp.key == "surface":
                c.eq("apasi surface echoed as sent (4; the docs read it as 4 %)", got["value"], APASI_SDK_SURFACE,
                     category="spec-deviation")
            if exp.interpretation is None:
                c(f"item interpretation absent or null :: {exp.key}", got["interpretation"] is None,
                  detail=got["interpretation"])
            else:
                c(f"item interpretation is a non-empty string :: {exp.key}", bool(got["interpretation"]))
                c.eq(f"item interpretation :: {exp.key}", got["interpretation"], exp.interpretation,
                     "contract" if exp.client else "clinical")
            extra = got["additionalData"] or {}
            if exp.client:
                c(f"client-supplied item carries no aiConfidence :: {exp.key}", "aiConfidence" not in extra,
                  detail=list(extra))
            for e in exp.extras:
                d = extra.get(e.key)
                if not c(f"additionalData present :: {exp.key}.{e.key}", d is not None, detail=list(extra)):
                    continue
                c.eq(f"additionalData code.text :: {exp.key}.{e.key}", d["code"]["text"], e.text)
                first = d["code"]["coding"][0]["code"] if d["code"]["coding"] else None
                c.eq(f"additionalData code.coding[0].code :: {exp.key}.{e.key}", first, e.key)
                if e.interpretation is not None:
                    c.eq(f"additionalData interpretation :: {exp.key}.{e.key}", d["interpretation"], e.interpretation,
                         "clinical")
                if e.kind == "percentage":
                    c(f"additionalData value is a percentage 0-100 :: {exp.key}.{e.key}", 0 <= d["value"] <= 100,
                      detail=d["value"])
                elif e.kind == "scalar":
                    c(f"additionalData value >= 0 :: {exp.key}.{e.key}", d["value"] >= 0, detail=d["value"])

    def _attachments(self, s: Scenario, c: ScenarioChecks, attachments: dict[str, Any] | None) -> None:
        if s.attachments is None:
            c("media.attachment absent or null", attachments is None, detail=None if attachments is None else list(attachments))
            return
        if not c("media.attachment present", attachments is not None):
            return
        c.eq("attachment count", len(attachments), len(s.attachments))
        width, height = images.size(s.image)
        for key, title in s.attachments.items():
            a = attachments.get(key)
            if not c(f"attachment present :: {key}", a is not None, detail=list(attachments)):
                continue
            c.eq(f"attachment title :: {key}", a["title"], title)
            c(f"attachment size equals the input image :: {key}", (a["width"], a["height"]) == (width, height),
              detail=f"{a['width']}x{a['height']} for a {width}x{height} input")
            c(f"attachment data non-empty :: {key}", bool(a["data"]))
            c.eq(f"attachment contentType image/jpeg :: {key}", a["contentType"], "image/jpeg")
            c.eq(f"attachment colorModel RGB :: {key}", a["colorModel"], "RGB")

    def _detections(self, s: Scenario, c: ScenarioChecks, detections: list[dict[str, Any]]) -> None:
        if not c("media.detection[0] exists", len(detections) > 0):
            return
        d = detections[0]
        c("detection[0].confidence > 0", d["confidence"] > 0, detail=d["confidence"])
        c("detection[0] box x1, y1, x2, y2 all > 0", all(d["box"][k] > 0 for k in ("x1", "y1", "x2", "y2")),
          detail=d["box"])
        c("detection[0] code.text among the expected", d["code"]["text"] in s.detections.values(), detail=d["code"]["text"])
        first = d["code"]["coding"][0]["code"] if d["code"]["coding"] else None
        c("detection[0] code.coding[0].code among the expected", first in s.detections, detail=first)

    def _manual(self, s: Scenario, c: ScenarioChecks) -> None:
        parsed = self._evolution(s, c)
        if parsed is None:
            return
        v, inst = parsed
        score = inst["score"]
        if s.live_manual:  # computed from the questionnaire, not estimated: contract
            c(f"score.value {s.score}", s.score.holds(score["value"]), detail=score["value"])
            c.eq("score category", score["category"], s.category)
            c.eq("score intensity", score["intensity"], s.intensity)
        items = inst["item"]
        if not c("item is an object (foreach over it)", items is not None):
            return
        for key, item in items.items():
            if not c(f"returned item was sent :: {key}", key in s.answers, detail=f"not sent: {key}"):
                continue
            c.eq(f"item value equals what was sent :: {key}", item["value"], float(s.answers[key]))
            c(f"item interpretation non-empty :: {key}", bool(item["interpretation"]), detail=item["interpretation"])
            c(f"item code.text non-empty :: {key}", bool(item["code"]["text"]))
            self._code_of(c, "item", item["code"], key, None)
        c("every sent item is returned", set(s.answers) <= set(items), detail=sorted(set(s.answers) - set(items)))

    def _missing(self, s: Scenario, c: ScenarioChecks) -> None:
        valid = (local_valid_body if s.path.endswith("local") else manual_valid_body)(s.system, images.b64(s.image))
        r = self.post_json(s.path, remove_by_dot_path(valid, s.remove))
        self._expect_one_error(c, r, "missing", "Field required", list(s.loc))

    def _data_uri(self, s: Scenario, c: ScenarioChecks) -> None:
        data = "data:image/jpeg;base64," + images.b64(s.image)
        if s.path == "diagnosis-support":
            body: dict[str, Any] = {"payload": [{"contentAttachment": {"data": data}}]}
        else:
            body = local_valid_body(s.system, data)
        r = self.post_json(s.path, body)
        self._expect_one_error(c, r, "value_error", "Value error, Only base64 data is allowed", list(s.loc))

    def _expect_one_error(self, c: ScenarioChecks, r: httpx.Response, type_: str, msg: str, loc: list[Any]) -> None:
        if not self._status(c, r, 422):
            return
        body = self._json(c, r)
        detail = body.get("detail") if isinstance(body, dict) else None
        if not c("detail is a list with exactly one error", isinstance(detail, list) and len(detail) == 1,
                 detail=detail if not isinstance(detail, list) else [d.get("loc") for d in detail if isinstance(d, dict)]):
            return
        err = detail[0] if isinstance(detail[0], dict) else {}
        c.eq("error type", err.get("type"), type_)
        c.eq("error msg", err.get("msg"), msg)
        c.eq("error loc", err.get("loc"), loc)

    def _diagnosis(self, s: Scenario, c: ScenarioChecks) -> None:
        body = {"payload": [{"contentAttachment": {"data": images.b64(name)}} for name in s.images]}
        r = self.post_json(s.path, body)
        if not self._status(c, r, 200):
            return
        v = self._parse(c, parse_diagnosis, self._json(c, r))
        if v is None:
            return
        self._envelope(c, v)
        for k, value in v["clinicalIndicator"].items():
            c(f"clinicalIndicator >= 0 :: {k}", value >= 0, detail=value)
        perf = v["performanceIndicator"]
        if s.failed_media is not None:
            for k in ("sensitivity", "specificity", "entropy"):
                c(f"performanceIndicator > 0 :: {k}", perf[k] > 0, detail=perf[k])
            c.eq("imagingAnalysis has one entry per image", len(v["imagingAnalysis"]), len(s.images))
            c.eq("exactly two failed media (isValid false)", len(v["failedMedia"]), s.failed_media)
            c.eq("the failed media are the invalid images", v["failedMedia"],
                 [i for i, n in enumerate(s.images) if n == "invalid.png"])
            return
        c("sensitivity in (1, 100]", 1 < perf["sensitivity"] <= 100, detail=perf["sensitivity"])
        c("specificity in (1, 100]", 1 < perf["specificity"] <= 100, detail=perf["specificity"])
        c("entropy in (0, 100]", 0 < perf["entropy"] <= 100, detail=perf["entropy"])
        if c("conclusion non-empty", len(v["conclusions"]) > 0):
            first = v["conclusions"][0]
            coding = first["code"]["coding"][0] if first["code"]["coding"] else {}
            for k in ("system", "systemDisplay", "version"):
                c.eq(f"conclusion[0] coding {k} :: {k}", coding.get(k), ICD[k])
            c("conclusion[0].probability > 1 (a percentage)", first["probability"] > 1, detail=first["probability"])
            self._top_condition(c, "conclusion[0]", first, s)
        c.eq("imagingAnalysis has one entry per image", len(v["imagingAnalysis"]), len(s.images))
        for n, rec in enumerate(v["imagingAnalysis"]):
            self._per_image(s, c, rec, f"image {n}")

    @staticmethod
    def _top_condition(c: ScenarioChecks, what: str, conclusion: dict[str, Any], s: Scenario) -> None:
        coding = conclusion["code"]["coding"][0] if conclusion["code"]["coding"] else {}
        top = s.top_condition
        c(f"{what} is {top.code} {top.display!r}", coding.get("code") == top.code and coding.get("display") == top.display,
          "clinical", f"{coding.get('code')} {coding.get('display')!r}")
        c.eq(f"{what} text is {top.text!r}", conclusion["code"]["text"], top.text, "clinical")

    def _per_image(self, s: Scenario, c: ScenarioChecks, rec: dict[str, Any], where: str) -> None:
        mv = rec["mediaValidity"]
        # The gate's judgement of our stand-in photos (the reference suite's photos are real ones): clinical.
        c(f"isValid :: {where}", mv["isValid"], "clinical")
        c(f"quality.acceptable :: {where}", mv["quality"]["acceptable"], "clinical")
        c(f"domain.isDermatological :: {where}", mv["domain"]["isDermatological"], "clinical")
        c.eq(f"modality is Clinical :: {where}", mv["modality"]["value"], "Clinical", "clinical")
        c(f"quality.score > 1 (0-100 scale) :: {where}", mv["quality"]["score"] > 1, detail=mv["quality"]["score"])
        c(f"quality.interpretation non-empty :: {where}", bool(mv["quality"]["interpretation"]))
        c(f"domain aiConfidence > 1 (a percentage) :: {where}", mv["domain"]["aiConfidence"]["value"] > 1,
          detail=mv["domain"]["aiConfidence"]["value"])
        confidences = {"aiConfidence": mv["domain"]["aiConfidence"],
                       "aiConfidenceClinical": mv["modality"]["aiConfidenceClinical"],
                       "aiConfidenceDermoscopic": mv["modality"]["aiConfidenceDermoscopic"]}
        for key, conf in confidences.items():
            coding = conf["code"]["coding"][0] if conf["code"]["coding"] else None
            if not c(f"confidence has a coding :: {key}", coding is not None):
                continue
            c.eq(f"confidence coding[0].code :: {key}", coding["code"], key)
            c(f"confidence coding systemDisplay names the service; system, version, display null :: {key}",
              bool(coding["systemDisplay"]) and coding["system"] is None and coding["version"] is None
              and coding["display"] is None, detail=coding)
            c.eq(f"confidence code.text :: {key}", conf["code"]["text"], DIAG_CONFIDENCE_TEXTS[key])
        c(f"per-image entropy > 1 :: {where}", rec["performanceIndicator"]["entropy"] > 1, "clinical",
          rec["performanceIndicator"]["entropy"])
        for k, value in rec["clinicalIndicator"].items():
            c(f"per-image clinicalIndicator >= 0 :: {k}", value >= 0, detail=value)
        conclusions = rec["conclusions"]
        if not c(f"per-image conclusion non-empty :: {where}", len(conclusions) > 0):
            return
        self._top_condition(c, f"{where} conclusion[0]", conclusions[0], s)
        for i, concl in enumerate(conclusions[:5]):
            heat = (concl["explainability"] or {}).get("heatMap")
            if c(f"top-5 conclusion carries explainability.heatMap :: {where} #{i}", heat is not None):
                c(f"heatMap has data and contentType :: {where} #{i}", bool(heat["data"]) and bool(heat["contentType"]))
                c.eq(f"heatMap title (docs) :: {where} #{i}", heat["title"], HEATMAP_TITLE)

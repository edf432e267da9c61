"""Static checks of the deployment files (compose, Dockerfiles, Kubernetes, monitoring).

CI has no Docker engine or cluster, so these tests parse the files and check
what breaks silently in production: a renamed setting that a manifest still
sets, a worker without its GPU, KEDA watching a queue nobody uses.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
INFRA = ROOT / "infra"
K8S = INFRA / "k8s"
DOCKER = INFRA / "docker"
MONITORING = INFRA / "monitoring"

DERMQ_VAR_RE = re.compile(r"\bDERMQ_[A-Z0-9_]+\b")

# Just enough of the Compose specification to catch structural mistakes:
# every service must say where its image comes from.
COMPOSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["services"],
    "properties": {
        "services": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {
                "type": "object",
                "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
                "properties": {
                    "image": {"type": "string"},
                    "build": {
                        "oneOf": [
                            {"type": "string"},
                            {
                                "type": "object",
                                "properties": {"context": {"type": "string"}, "dockerfile": {"type": "string"}},
                                "required": ["context"],
                            },
                        ]
                    },
                    "command": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
                    "environment": {
                        "oneOf": [
                            {
                                "type": "object",
                                "additionalProperties": {"type": ["string", "number", "boolean", "null"]},
                            },
                            {"type": "array", "items": {"type": "string"}},
                        ]
                    },
                    "ports": {"type": "array", "items": {"type": ["string", "number", "object"]}},
                    "volumes": {"type": "array"},
                    "depends_on": {"type": ["array", "object"]},
                    "healthcheck": {"type": "object", "required": ["test"]},
                    "deploy": {"type": "object"},
                },
            },
        },
        "volumes": {"type": ["object", "null"]},
    },
    "patternProperties": {"^x-": {}},
}


# --- helpers --------------------------------------------------------------------


def _load_all(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def _yaml_files() -> list[Path]:
    return [COMPOSE_FILE, *sorted(p for p in INFRA.rglob("*") if p.suffix in (".yml", ".yaml"))]


def _k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(K8S.glob("*.yaml")) for doc in _load_all(path)]


def _k8s_doc(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for _, doc in _k8s_docs() if doc.get("kind") == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected exactly one {kind} named {name}, found {len(matches)}"
    return matches[0]


def _compose() -> dict[str, Any]:
    (doc,) = _load_all(COMPOSE_FILE)
    return doc


def _command(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else list(value)


def _env_names(environment: dict[str, Any] | list[str] | None) -> set[str]:
    if environment is None:
        return set()
    if isinstance(environment, dict):
        return set(environment)
    return {item.split("=", 1)[0] for item in environment}


def _env_value(environment: dict[str, Any] | list[str], name: str) -> str:
    if isinstance(environment, dict):
        return str(environment[name])
    return dict(item.split("=", 1) for item in environment)[name]


def _containers(deployment: dict[str, Any]) -> list[dict[str, Any]]:
    return deployment["spec"]["template"]["spec"]["containers"]


def _field_for(var: str) -> str:
    return var.removeprefix("DERMQ_").lower()


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with comments dropped and continuations joined."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    result = []
    for instruction in logical:
        keyword, _, args = instruction.partition(" ")
        result.append((keyword.upper(), args.strip()))
    return result


def _deployment_env_vars() -> dict[str, set[str]]:
    """Every DERMQ_* variable the deployment files set, by where it was found."""
    found: dict[str, set[str]] = {}

    def add(var: str, where: str) -> None:
        if var.startswith("DERMQ_"):
            found.setdefault(var, set()).add(where)

    compose = _compose()
    for name, service in compose["services"].items():
        for var in _env_names(service.get("environment")):
            add(var, f"docker-compose.yml:{name}")
    for key, value in compose.items():
        if key.startswith("x-") and isinstance(value, dict):
            for var in value:
                add(var, f"docker-compose.yml:{key}")
    # ${DERMQ_...} interpolations read from the user's shell or .env.
    for var in re.findall(r"\$\{(DERMQ_[A-Z0-9_]+)", COMPOSE_FILE.read_text(encoding="utf-8")):
        add(var, "docker-compose.yml:interpolation")

    for path, doc in _k8s_docs():
        where = f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "ConfigMap":
            for var in doc.get("data", {}):
                add(var, where)
        elif doc["kind"] == "Secret":
            for var in {**doc.get("data", {}), **doc.get("stringData", {})}:
                add(var, where)
        elif doc["kind"] == "Deployment":
            for container in _containers(doc):
                for item in container.get("env", []):
                    add(item["name"], where)

    for dockerfile in DOCKER.glob("*.Dockerfile"):
        for keyword, args in _dockerfile_instructions(dockerfile):
            if keyword == "ENV":
                for var in re.findall(r"(?:^|\s)(DERMQ_[A-Z0-9_]+)=", args):
                    add(var, dockerfile.name)
    return found


# --- every file -------------------------------------------------------------------


@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_yaml_files_parse(path: Path) -> None:
    docs = _load_all(path)
    assert docs, f"{path} is empty"
    assert all(isinstance(doc, dict) for doc in docs)


def test_expected_files_exist() -> None:
    expected = [
        "docker-compose.yml",
        "infra/README.md",
        "infra/docker/api.Dockerfile",
        "infra/docker/worker.Dockerfile",
        "infra/k8s/namespace.yaml",
        "infra/k8s/configmap.yaml",
        "infra/k8s/secret.example.yaml",
        "infra/k8s/api-deployment.yaml",
        "infra/k8s/worker-deployment.yaml",
        "infra/k8s/worker-scaledobject.yaml",
        "infra/k8s/api-hpa.yaml",
        "infra/monitoring/prometheus.yml",
        "infra/monitoring/alerts.yml",
    ]
    missing = [name for name in expected if not (ROOT / name).is_file()]
    assert not missing


# --- settings consistency ------------------------------------------------------------


def test_every_dermq_variable_is_a_setting() -> None:
    """A renamed or removed setting must not linger in a deployment file, silently ignored."""
    fields = set(Settings.model_fields)
    found = _deployment_env_vars()
    # Sanity: the extraction sees the variables this test exists for.
    assert {"DERMQ_REDIS_URL", "DERMQ_STORAGE_BACKEND", "DERMQ_JWT_SECRET", "DERMQ_S3_ENDPOINT"} <= set(found)
    unknown = {var: sorted(where) for var, where in found.items() if _field_for(var) not in fields}
    assert not unknown, f"DERMQ_ variables with no Settings field: {unknown}"


def test_no_unknown_dermq_names_anywhere_in_deployment_files() -> None:
    """Also catches names in comments, README instructions and list-style env entries."""
    fields = set(Settings.model_fields)
    paths = [COMPOSE_FILE, *sorted(p for p in INFRA.rglob("*") if p.is_file())]
    unknown = {
        f"{path.relative_to(ROOT)}: {var}"
        for path in paths
        for var in DERMQ_VAR_RE.findall(path.read_text(encoding="utf-8"))
        if _field_for(var) not in fields
    }
    assert not unknown, sorted(unknown)


def test_compose_and_k8s_agree_on_storage_backend_values() -> None:
    backends = {member.value for member in Settings.model_fields["storage_backend"].annotation}
    compose_env = _compose()["x-dermq-env"]
    assert compose_env["DERMQ_STORAGE_BACKEND"] in backends
    assert _k8s_doc("ConfigMap", "dermq-config")["data"]["DERMQ_STORAGE_BACKEND"] in backends


# --- docker compose ----------------------------------------------------------------


def test_compose_matches_schema() -> None:
    jsonschema.validate(_compose(), COMPOSE_SCHEMA)


def test_compose_services() -> None:
    services = _compose()["services"]
    assert {"redis", "minio", "api", "worker"} <= set(services)


def test_compose_redis_is_append_only() -> None:
    redis = _compose()["services"]["redis"]
    assert redis["image"].startswith("redis:7")
    command = _command(redis["command"])
    index = command.index("--appendonly")
    assert command[index + 1] == "yes"
    assert any(str(v).endswith(":/data") for v in redis["volumes"]), "AOF must live on a volume"
    assert "healthcheck" in redis


def test_compose_minio() -> None:
    minio = _compose()["services"]["minio"]
    assert minio["image"].startswith("minio/minio")
    command = _command(minio["command"])
    assert command[:2] == ["server", "/data"]
    assert "--console-address" in command
    published = {str(p).split(":")[0] for p in minio["ports"]}
    assert {"9000", "9001"} <= published
    assert "healthcheck" in minio


def test_compose_api() -> None:
    services = _compose()["services"]
    api = services["api"]
    assert api["build"]["dockerfile"] == "infra/docker/api.Dockerfile"
    assert (ROOT / api["build"]["context"] / api["build"]["dockerfile"]).is_file()
    assert _command(api["command"]) == ["dermq", "api", "--host", "0.0.0.0", "--port", "8000"]
    published = []
    for port in api["ports"]:
        if isinstance(port, dict):
            published.append((str(port.get("published")), str(port["target"])))
        else:
            *host, container = str(port).split(":")
            published.append((host[-1] if host else container, container))
    assert ("8000", "8000") in published
    for dependency in ("redis", "minio"):
        assert api["depends_on"][dependency]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(_command(api["healthcheck"]["test"]))


def test_compose_api_and_worker_environment() -> None:
    services = _compose()["services"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert _env_value(env, "DERMQ_REDIS_URL") == "redis://redis:6379/0"
        assert _env_value(env, "DERMQ_STORAGE_BACKEND") == "s3"
        assert _env_value(env, "DERMQ_S3_ENDPOINT") == "minio:9000"
        for var in ("DERMQ_S3_ACCESS_KEY", "DERMQ_S3_SECRET_KEY", "DERMQ_S3_BUCKET", "DERMQ_ENV", "DERMQ_JWT_SECRET"):
            assert var in _env_names(env), f"{name} lacks {var}"
    # The JWT secret must come from the operator, never a default baked into the file.
    assert re.search(r"DERMQ_JWT_SECRET:\s*\$\{DERMQ_JWT_SECRET:\?", COMPOSE_FILE.read_text(encoding="utf-8"))


def test_compose_worker_is_scalable_and_gets_a_gpu() -> None:
    worker = _compose()["services"]["worker"]
    assert worker["build"]["dockerfile"] == "infra/docker/worker.Dockerfile"
    assert (ROOT / worker["build"]["context"] / worker["build"]["dockerfile"]).is_file()
    assert _command(worker["command"]) == ["dermq", "worker"]
    # `docker compose up --scale worker=N` fails with a fixed name or host port.
    assert "container_name" not in worker
    assert "ports" not in worker
    for dependency in ("redis", "minio"):
        assert worker["depends_on"][dependency]["condition"] == "service_healthy"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(
        d.get("driver") == "nvidia" and d.get("count") == 1 and "gpu" in d.get("capabilities", []) for d in devices
    ), devices


# --- Dockerfiles ----------------------------------------------------------------------


def _final_cmd(path: Path) -> list[str]:
    keyword, args = _dockerfile_instructions(path)[-1]
    assert keyword == "CMD", f"{path.name} must end with CMD, ends with {keyword}"
    return json.loads(args)


def _last_user(path: Path) -> str:
    users = [args for keyword, args in _dockerfile_instructions(path) if keyword == "USER"]
    assert users, f"{path.name} never switches away from root"
    return users[-1]


def test_api_dockerfile() -> None:
    path = DOCKER / "api.Dockerfile"
    instructions = _dockerfile_instructions(path)
    assert all("python:3.11-slim" in args for keyword, args in instructions if keyword == "FROM")
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert ".[api]" in runs
    assert ".[worker]" not in runs
    # The API image must stay free of torch (size, cold start, attack surface).
    code = " ".join(args for _, args in instructions)
    assert "torch" not in code.lower()
    assert "cuda" not in code.lower()
    assert _last_user(path).split(":")[0] not in ("root", "0")
    assert ("EXPOSE", "8000") in instructions
    assert any(keyword == "HEALTHCHECK" and "/healthz" in args for keyword, args in instructions)
    assert _final_cmd(path) == ["dermq", "api", "--host", "0.0.0.0", "--port", "8000"]


def test_worker_dockerfile() -> None:
    path = DOCKER / "worker.Dockerfile"
    instructions = _dockerfile_instructions(path)
    bases = [args for keyword, args in instructions if keyword == "FROM"]
    assert bases and any("cuda" in base for base in bases), bases
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    assert ".[worker]" in runs
    assert "torch" in runs
    assert _last_user(path).split(":")[0] not in ("root", "0")
    assert _final_cmd(path) == ["dermq", "worker"]


# --- Kubernetes -------------------------------------------------------------------


def test_k8s_docs_are_well_formed() -> None:
    docs = _k8s_docs()
    assert len(docs) >= 8
    for path, doc in docs:
        for field in ("apiVersion", "kind", "metadata"):
            assert field in doc, f"{path.name}: missing {field}"
        assert doc["metadata"].get("name"), f"{path.name}: missing metadata.name"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "dermq", f"{path.name}: {doc['kind']} outside the namespace"
            assert "spec" in doc or "data" in doc or "stringData" in doc, f"{path.name}: no spec/data"


def test_k8s_deployments_reference_existing_config() -> None:
    configmaps = {doc["metadata"]["name"] for _, doc in _k8s_docs() if doc["kind"] == "ConfigMap"}
    secrets = {doc["metadata"]["name"] for _, doc in _k8s_docs() if doc["kind"] == "Secret"}
    for name in ("dermq-api", "dermq-worker"):
        deployment = _k8s_doc("Deployment", name)
        spec = deployment["spec"]
        assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
        for container in _containers(deployment):
            refs = container.get("envFrom", [])
            assert {r["configMapRef"]["name"] for r in refs if "configMapRef" in r} <= configmaps
            assert {r["secretRef"]["name"] for r in refs if "secretRef" in r} <= secrets
            assert any("configMapRef" in r for r in refs) and any("secretRef" in r for r in refs)


def test_k8s_api_deployment_and_service() -> None:
    deployment = _k8s_doc("Deployment", "dermq-api")
    assert deployment["spec"]["replicas"] == 2
    (container,) = _containers(deployment)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"requests", "limits"} <= set(container["resources"])
    assert any(p["containerPort"] == 8000 for p in container["ports"])
    service = _k8s_doc("Service", "dermq-api")
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()

    hpa = _k8s_doc("HorizontalPodAutoscaler", "dermq-api")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dermq-api"}
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_k8s_worker_requests_a_gpu() -> None:
    deployment = _k8s_doc("Deployment", "dermq-worker")
    (container,) = _containers(deployment)
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) == 1
    assert container["command"] == ["dermq", "worker"]
    # Long enough to finish a job after SIGTERM, at least the broker's redelivery window.
    visibility_timeout = Settings.model_fields["visibility_timeout_s"].default
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= visibility_timeout


def test_keda_scales_the_worker_on_the_configured_queues() -> None:
    (scaled,) = [doc for _, doc in _k8s_docs() if doc["kind"] == "ScaledObject"]
    assert scaled["apiVersion"].startswith("keda.sh/")
    worker = _k8s_doc("Deployment", "dermq-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == worker["metadata"]["name"]
    assert scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert 1 <= scaled["spec"]["minReplicaCount"] < scaled["spec"]["maxReplicaCount"]

    queues = {Settings.model_fields["queue_interactive"].default, Settings.model_fields["queue_batch"].default}
    triggers = scaled["spec"]["triggers"]
    assert all(t["type"] == "redis" for t in triggers)
    assert {t["metadata"]["listName"] for t in triggers} == queues

    # The configmap names the same queues, and KEDA watches the Redis the app uses.
    data = _k8s_doc("ConfigMap", "dermq-config")["data"]
    assert {data["DERMQ_QUEUE_INTERACTIVE"], data["DERMQ_QUEUE_BATCH"]} == queues
    redis_host = re.match(r"redis://([^/:]+):(\d+)", data["DERMQ_REDIS_URL"])
    assert redis_host
    for trigger in triggers:
        assert trigger["metadata"]["address"] == f"{redis_host[1]}:{redis_host[2]}"


def test_secret_example_holds_only_placeholders() -> None:
    secret = _k8s_doc("Secret", "dermq-secrets")
    values = secret.get("stringData", {})
    assert {"DERMQ_JWT_SECRET", "DERMQ_S3_SECRET_KEY"} <= set(values)
    assert all("replace" in value for value in values.values())


# --- monitoring ------------------------------------------------------------------------


def test_prometheus_scrapes_api_and_workers() -> None:
    (config,) = _load_all(MONITORING / "prometheus.yml")
    ports: dict[str, set[int]] = {}
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for sd in job.get("dns_sd_configs", []):
            ports.setdefault(job["job_name"], set()).add(int(sd["port"]))
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                ports.setdefault(job["job_name"], set()).add(int(target.rsplit(":", 1)[1]))
    metrics_port = Settings.model_fields["worker_metrics_port"].default
    assert ports.get("dermq-api") == {8000}
    assert ports.get("dermq-worker") == {metrics_port}
    for rule_file in config["rule_files"]:
        assert (MONITORING / rule_file).is_file()


def test_worker_metrics_port_is_consistent() -> None:
    """Setting, container port, scrape annotation and compose agree on the worker metrics port."""
    metrics_port = Settings.model_fields["worker_metrics_port"].default
    compose_worker = _compose()["services"]["worker"]
    assert int(_env_value(compose_worker["environment"], "DERMQ_WORKER_METRICS_PORT")) == metrics_port
    assert str(metrics_port) in [str(p) for p in compose_worker["expose"]]

    assert int(_k8s_doc("ConfigMap", "dermq-config")["data"]["DERMQ_WORKER_METRICS_PORT"]) == metrics_port
    worker = _k8s_doc("Deployment", "dermq-worker")
    assert any(p["containerPort"] == metrics_port for c in _containers(worker) for p in c["ports"])
    assert int(worker["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]) == metrics_port


def test_alert_rules() -> None:
    (config,) = _load_all(MONITORING / "alerts.yml")
    (prom,) = _load_all(MONITORING / "prometheus.yml")
    scrape_jobs = {job["job_name"] for job in prom["scrape_configs"]}
    rules = [rule for group in config["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {"DermqNoWorkers", "DermqQueueBacklog", "DermqJobFailureRate"} <= names
    for rule in rules:
        assert rule["expr"].strip()
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"]
        # Scrape job names used in rules must exist in prometheus.yml.
        for job in re.findall(r'job="([^"]+)"', rule["expr"]):
            assert job in scrape_jobs


def test_alert_rules_use_exported_metric_names() -> None:
    """An alert on a metric nobody exports never fires; check names against the exporters' source."""
    (config,) = _load_all(MONITORING / "alerts.yml")
    exporters = " ".join(
        (ROOT / name).read_text(encoding="utf-8") for name in ("api/metrics.py", "workers/metrics.py")
    )
    used = {
        name
        for group in config["groups"]
        for rule in group["rules"]
        for name in re.findall(r"\b(dermq_[a-z0-9_]+)", rule["expr"])
    }
    assert used
    missing = {name for name in used if f'"{name}"' not in exporters}
    assert not missing, f"alerts use metrics that api/metrics.py and workers/metrics.py do not define: {missing}"


def test_worker_image_ships_the_default_model_bundles(tmp_path: Path) -> None:
    """The worker image installs the package non-editably (`pip install ".[worker]"` from a copy
    of pipeline/): the shipped bundles must travel as package data, or workers have no model."""
    import subprocess
    import sys
    import zipfile

    copied = [args for keyword, args in _dockerfile_instructions(DOCKER / "worker.Dockerfile") if keyword == "COPY"]
    assert any(args.split()[0] == "pipeline" for args in copied), copied
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("dermq-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for bundle in ("dermoscopy-classifier", "dermoscopy-segmenter"):
        for file in ("manifest.json", "weights.safetensors", "MODEL_CARD.md"):
            assert f"pipeline/bundles/{bundle}/{file}" in names, (bundle, file)
    assert not any(".checkpoint" in name for name in names)

# syntax=docker/dockerfile:1
# Slim HTTP API image: no torch, no CUDA. The API only validates requests,
# stores images and enqueues jobs; inference runs in the worker image.
# Build from the repository root:
#   docker build -f infra/docker/api.Dockerfile -t dermq-api .

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY dermq ./dermq
COPY api ./api
COPY workers ./workers
COPY pipeline ./pipeline
# Only the API extra: the worker extra (torch and friends) is left out on purpose.
RUN pip install ".[api]"

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/dermq \
    DERMQ_DATA_DIR=/var/lib/dermq
RUN groupadd --system --gid 10001 dermq \
 && useradd --system --uid 10001 --gid dermq --home-dir /var/lib/dermq --shell /usr/sbin/nologin dermq \
 && install -d -o dermq -g dermq -m 0750 /var/lib/dermq
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/dermq
EXPOSE 8000
# python:3.11-slim has no curl; the standard library is enough for a probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=3)"]
CMD ["dermq", "api", "--host", "0.0.0.0", "--port", "8000"]

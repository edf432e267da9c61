# syntax=docker/dockerfile:1
# GPU worker image: Celery worker with torch on CUDA, one process per GPU.
# Build from the repository root:
#   docker build -f infra/docker/worker.Dockerfile -t dermq-worker .
#
# The CUDA base image provides the NVIDIA container-runtime setup; the CUDA
# and cuDNN user-space libraries come with the torch wheels from the CUDA
# index below, so they always match the torch build. Keep TORCH_INDEX_URL's
# CUDA version in line with the base image's and the hosts' drivers.

FROM nvidia/cuda:12.4.1-base-ubuntu22.04

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
ARG TORCH_VERSION=
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/var/lib/dermq \
    DERMQ_DATA_DIR=/var/lib/dermq \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 python3.11-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3.11 -m venv /opt/venv

# torch first, from the CUDA wheel index, so `.[worker]` finds it satisfied
# instead of pulling a different build from PyPI.
RUN pip install --index-url "$TORCH_INDEX_URL" "torch${TORCH_VERSION:+==$TORCH_VERSION}"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY core ./core
COPY dermq ./dermq
COPY api ./api
COPY workers ./workers
COPY pipeline ./pipeline
RUN pip install ".[worker]" \
 && python -c "import torch; assert torch.version.cuda, 'a CPU-only torch build was installed'; print('torch', torch.__version__, 'CUDA', torch.version.cuda)" \
 && cd / && rm -rf /src

RUN groupadd --system --gid 10001 dermq \
 && useradd --system --uid 10001 --gid dermq --home-dir /var/lib/dermq --shell /usr/sbin/nologin dermq \
 && install -d -o dermq -g dermq -m 0750 /var/lib/dermq
USER 10001:10001
WORKDIR /var/lib/dermq
# Prometheus metrics (stage latency, batch sizes).
EXPOSE 9100
# Celery's warm shutdown: on SIGTERM it stops consuming and finishes running jobs.
STOPSIGNAL SIGTERM
CMD ["dermq", "worker"]

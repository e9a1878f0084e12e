# The GPU worker image: Prefect flow runs of the TensorRT-LLM runtimes (trtllm, trtllm-engine) run here.
# Build it from the repository root:
#
#   docker build -f docker/worker.Dockerfile -t engineforge/worker:trtllm-1.2.1 .
#
# TensorRT-LLM comes from NVIDIA's release image, pinned to the version engineforge's TensorRT-LLM
# runtimes are written against (TRTLLM_RELEASE_IMAGE in engineforge/packaging/base_image.py; a test
# keeps the two equal). Engines built here load only in this version, so serving images use the
# same tag. Behind a mirror or offline, pass pip's settings: --build-arg PIP_INDEX_URL=... (or
# PIP_NO_INDEX=1 with PIP_FIND_LINKS pointing at a wheelhouse copied into the context).
ARG TRTLLM_IMAGE=nvcr.io/nvidia/tensorrt-llm/release:1.2.1
FROM ${TRTLLM_IMAGE}
ARG TRTLLM_IMAGE
ARG TRTLLM_VERSION=1.2.1
ARG PIP_INDEX_URL
ARG PIP_NO_INDEX
ARG PIP_FIND_LINKS

# The checkout flow runs execute in (prefect.yaml's pull step: ENGINEFORGE_CHECKOUT).
WORKDIR /opt/engineforge
COPY pyproject.toml README.md prefect.yaml requirements.lock ./
COPY engineforge ./engineforge
COPY flows ./flows
COPY tasks ./tasks
COPY recipes ./recipes

# engineforge in its own virtual environment that still sees the image's packages (tensorrt_llm,
# torch, mpi4py): its own dependencies (transformers 5, prefect, mlflow) land in the venv and never
# replace the transformers that tensorrt_llm pins. The trtllm-* commands keep the image's python3;
# the venv stays off PATH (trtllm-llmapi-launch runs `python3`), only its entry points are linked.
RUN ["python3", "-m", "venv", "--system-site-packages", "/opt/engineforge-venv"]
# From the lock (hashes checked; torch is the image's), then engineforge itself without resolving again.
RUN ["/opt/engineforge-venv/bin/pip", "install", "--no-cache-dir", "--require-hashes", "--no-deps", "-r", "/opt/engineforge/requirements.lock"]
RUN ["/opt/engineforge-venv/bin/pip", "install", "--no-cache-dir", "--no-deps", "--editable", "/opt/engineforge"]
RUN ["ln", "-s", "/opt/engineforge-venv/bin/engineforge", "/opt/engineforge-venv/bin/prefect", "/usr/local/bin/"]
# The runtimes' availability probe (find_spec + which, never an import: that needs a GPU driver).
RUN ["/opt/engineforge-venv/bin/python", "-c", "import importlib.util, shutil, sys; missing = [c for c in ('trtllm-serve', 'trtllm-build', 'trtllm-bench', 'trtllm-llmapi-launch', 'mpirun') if not shutil.which(c)]; sys.exit(f'missing: {missing}' if missing or importlib.util.find_spec('tensorrt_llm') is None else 0)"]

ENV ENGINEFORGE_CHECKOUT=/opt/engineforge PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="engineforge GPU worker" \
      org.opencontainers.image.base.name="${TRTLLM_IMAGE}" \
      ai.engineforge.tensorrt-llm-version=${TRTLLM_VERSION}
# Declares this host's GPU slots, then runs a Prefect worker on the pool (engineforge/commands/worker.py).
CMD ["engineforge", "worker", "--pool", "gpu", "--checkout", "/opt/engineforge"]

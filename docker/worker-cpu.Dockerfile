# The CPU worker image: a Docker work pool's flow runs (prefect-docker runs `prefect flow-run
# execute` in it) on the CPU runtimes. Built by engineforge/packaging/worker_image.py
# (`python -m engineforge.packaging worker-image`) over the dependency image DEPS, in a context
# holding only the checkout's code (worker_image.CODE). GPU hosts use docker/worker.Dockerfile.
ARG DEPS
FROM ${DEPS}
ARG DEPS
WORKDIR /opt/engineforge
# The package's metadata first (engineforge's version enters stage keys): a code change leaves this
# layer cached. editable_mode=compat puts /opt/engineforge itself on sys.path.
COPY pyproject.toml README.md ./
RUN ["pip", "install", "--no-deps", "--no-index", "--no-build-isolation", "--no-cache-dir", "--disable-pip-version-check", "--quiet", "--config-settings", "editable_mode=compat", "--editable", "."]
# The checkout flow runs execute in (prefect.yaml's pull step: ENGINEFORGE_CHECKOUT).
COPY prefect.yaml ./
COPY engineforge ./engineforge
COPY flows ./flows
COPY tasks ./tasks
COPY recipes ./recipes
ENV ENGINEFORGE_CHECKOUT=/opt/engineforge
LABEL org.opencontainers.image.title="engineforge CPU worker" \
      org.opencontainers.image.base.name="${DEPS}"

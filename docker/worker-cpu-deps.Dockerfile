# Dependencies of the CPU worker image: built by engineforge/packaging/worker_image.py (once per
# dependency set, tagged engineforge/worker-deps:cpu-<hash>) over engineforge's debootstrap base,
# from a wheelhouse the host built: no index, no public registry. Context: requirements.txt and
# wheelhouse/. The wheels stay in the first stage; only the installed venv reaches the image.
ARG BASE
FROM ${BASE} AS wheels
COPY requirements.txt wheelhouse/ /tmp/engineforge/wheelhouse/
RUN ["python3", "-m", "venv", "/opt/engineforge-venv"]
RUN ["/opt/engineforge-venv/bin/pip", "install", "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--find-links", "/tmp/engineforge/wheelhouse", "-r", "/tmp/engineforge/wheelhouse/requirements.txt"]

FROM ${BASE}
COPY --from=wheels /opt/engineforge-venv /opt/engineforge-venv
ENV PATH=/opt/engineforge-venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/engineforge-venv PYTHONUNBUFFERED=1 HF_HUB_DISABLE_TELEMETRY=1

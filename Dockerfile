# syntax=docker/dockerfile:1
# Multi-stage image of the certification service (API, worker and CLI share it).
#   docker build -t pension-cert .                                  # models fetched from the pinned URLs
#   docker build --build-arg FETCH_MODELS=0 -t pension-cert .        # models mounted at run time instead:
#   docker run -v /srv/models:/models:ro -e PENSION_CERT_MODELS_DIR=/models -p 8000:8000 pension-cert
# Set real secrets (PENSION_CERT_MEDIA_KEY, PENSION_CERT_SIGNING_KEY, PENSION_CERT_API_KEYS,
# PENSION_CERT_ADMIN_API_KEYS, e.g. with --env-file): `serve --host 0.0.0.0` refuses the public development
# defaults off loopback, and outside development (PENSION_CERT_ENV=production) the service refuses them anyway.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends build-essential && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY models ./models
COPY pipelines ./pipelines
COPY proxy_auth ./proxy_auth
COPY service ./service
COPY alembic ./alembic
COPY alembic.ini ./
RUN python -m venv /opt/venv && /opt/venv/bin/pip install --upgrade pip \
    && /opt/venv/bin/pip install -c constraints.txt .  # the versions CI passed with (scripts/setup.sh)

FROM build AS models
ARG FETCH_MODELS=1
ARG MODEL_PACK=default
# Downloads the pinned files and verifies each sha256; a mismatch fails the build. Readable by all (fetch writes
# 0600 temporary files), writable by root only: the runtime user must not be able to rewrite its pinned models.
RUN mkdir -p /models && if [ "$FETCH_MODELS" = "1" ]; then \
      PENSION_CERT_MODELS_DIR=/models /opt/venv/bin/pension-cert models fetch --pack "$MODEL_PACK"; fi \
    && chmod -R u=rwX,go=rX /models

FROM python:3.11-slim-bookworm AS runtime
# espeak-ng: the H5 pages' spoken prompts (service/features/wechat/h5/voice.py), generated into var_dir on first use.
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 fonts-noto-cjk espeak-ng \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /srv/pension-cert --create-home app
COPY --from=build /opt/venv /opt/venv
COPY --from=build /src/alembic /srv/pension-cert/alembic
COPY --from=build /src/alembic.ini /srv/pension-cert/alembic.ini
# Root-owned (no --chown): the service user `app` reads the models and cannot change them (docs/security.md).
COPY --from=models /models /models
ENV PATH=/opt/venv/bin:$PATH \
    PENSION_CERT_MODELS_DIR=/models \
    PENSION_CERT_VAR_DIR=/srv/pension-cert/var \
    PYTHONUNBUFFERED=1
WORKDIR /srv/pension-cert
USER app
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["pension-cert", "serve", "--host", "0.0.0.0", "--port", "8000"]

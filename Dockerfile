# Hashtag Predictor images. Every Python package comes from pyproject.toml: each image is
# `pip install -e ".[extras]"` of this project, as `make setup` and environment.yml do.
#
#   ./build.sh                          the workshop image (the default target, `workshop`)
#   ./run.sh                            JupyterLab on :8888 with the notebooks; hashtags/,
#                                       models/ and runs/ mounted from the checkout
#   docker run -p 5000:5000 IMAGE api   the prediction API (./app.sh)
#   docker run -p 8866:8866 IMAGE voila the Voila dashboard (notebooks/dashboard.ipynb)
#   docker run IMAGE hashtag train ...  any other command, as given
#   ./build.sh serve models/latest      the serving image (target `serve`): the API and one
#                                       model, passed as a named build context
#                                       (--build-context model=...; BuildKit, Docker 23+),
#                                       so models/ never enters the build context
#
# Stages: base (Python, the non-root user, the entrypoint) -> deps-serve / deps-workshop
# (one virtualenv each, the project installed editable from pyproject.toml alone, with
# helpers/__init__.py and an empty README standing in for the rest, so editing the code or
# the README never reinstalls TensorFlow) -> serve / workshop.

# The non-root user's ids: build.sh passes the host user's for the workshop image, so files
# written into the mounted hashtags/ and models/ belong to the person who ran ./run.sh.
ARG APP_UID=1000
ARG APP_GID=1000

FROM python:3.11-slim-bookworm AS base
ARG APP_UID
ARG APP_GID
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/app \
    HASHTAG_CACHE_DIR=/home/app/.cache/hashtag-predictor \
    TFHUB_CACHE_DIR=/home/app/.cache/hashtag-predictor/tfhub \
    MPLCONFIGDIR=/home/app/.cache/matplotlib
RUN if [ "$APP_UID" = 0 ]; then echo "APP_UID 0 would run the image as root" >&2; exit 1; fi \
    && (getent group "$APP_GID" >/dev/null || groupadd --gid "$APP_GID" app) \
    && useradd --uid "$APP_UID" --gid "$APP_GID" --create-home --home-dir /home/app \
       --shell /bin/bash app \
    && mkdir -p /home/app/workshop /home/app/.cache \
    && chown -R "$APP_UID:$APP_GID" /home/app

# The entrypoint: docker run IMAGE [lab | api | voila [NOTEBOOK] | COMMAND...]; extra
# arguments go to the server (flags alone go to JupyterLab). Each mode notes its server's
# health URL for `healthcheck`, which HEALTHCHECK runs: healthy when it answers 200
# (JupyterLab /api; the API /healthz, so only once a model is loaded; a static file of
# Voila's, as its / starts a kernel). A one-off command has no server: always healthy.
# (Written with printf, not a here-document, so that hadolint can read this file.)
# hadolint ignore=SC2016
RUN printf '%s\n' > /usr/local/bin/hashtag-entrypoint \
      '#!/bin/sh' \
      'set -eu' \
      'case "${1:-}" in -*) set -- lab "$@" ;; esac' \
      'mode="${1:-lab}"' \
      'if [ "$#" -gt 0 ]; then shift; fi' \
      'health() { echo "http://127.0.0.1:$1$2" > /tmp/hashtag-health; }' \
      'case "$mode" in' \
      '  lab)' \
      '    port="${PORT:-8888}"; health "$port" /api' \
      '    exec jupyter lab --ip=0.0.0.0 --port="$port" --no-browser --ServerApp.root_dir="$PWD" "$@" ;;' \
      '  api)' \
      '    export PORT="${PORT:-5000}"; health "$PORT" /healthz' \
      '    exec ./app.sh "$@" ;;' \
      '  voila)' \
      '    port="${PORT:-8866}"; health "$port" /voila/static/voila.js' \
      '    notebook="${1:-notebooks/dashboard.ipynb}"' \
      '    if [ "$#" -gt 0 ]; then shift; fi' \
      '    exec voila "$notebook" --no-browser --port="$port" --Voila.ip=0.0.0.0 "$@" ;;' \
      '  healthcheck)' \
      '    if [ ! -f /tmp/hashtag-health ]; then exit 0; fi' \
      '    url="$(cat /tmp/hashtag-health)"' \
      '    exec python -c "import sys, urllib.request as r; r.urlopen(sys.argv[1], timeout=4)" "$url" ;;' \
      '  *)' \
      '    rm -f /tmp/hashtag-health' \
      '    exec "$mode" "$@" ;;' \
      'esac' \
    && chmod 755 /usr/local/bin/hashtag-entrypoint
WORKDIR /home/app/workshop


FROM base AS deps-serve
COPY pyproject.toml ./
COPY helpers/__init__.py helpers/
RUN touch README.md \
    && python -m venv /opt/venv \
    && pip install -e ".[serve]"


FROM base AS deps-workshop
COPY pyproject.toml ./
COPY helpers/__init__.py helpers/
RUN touch README.md \
    && python -m venv /opt/venv \
    && pip install -e ".[notebooks,serve,scrape]"


# The model for the serve target: build.sh passes --build-context model=models/<run>.
# Without one, this stage fails and says so.
FROM base AS model
RUN echo "the serve target needs a model: ./build.sh serve models/latest" >&2 && exit 1


FROM base AS serve
ARG APP_UID
ARG APP_GID
ARG MODEL_NAME=model
COPY --from=deps-serve /opt/venv /opt/venv
COPY --chown=${APP_UID}:${APP_GID} pyproject.toml README.md app.sh ./
COPY --chown=${APP_UID}:${APP_GID} helpers/ helpers/
COPY --chown=${APP_UID}:${APP_GID} --from=model / models/${MODEL_NAME}/
RUN ln -s "$MODEL_NAME" models/latest
USER ${APP_UID}:${APP_GID}
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["hashtag-entrypoint", "healthcheck"]
ENTRYPOINT ["hashtag-entrypoint"]
CMD ["api"]


# The default target: the workshop (JupyterLab, notebooks, API, Voila), working offline.
FROM base AS workshop
ARG APP_UID
ARG APP_GID
COPY --from=deps-workshop --chown=${APP_UID}:${APP_GID} /opt/venv /opt/venv
COPY --chown=${APP_UID}:${APP_GID} . .
USER ${APP_UID}:${APP_GID}
# Build the offline backbone into the cache now, so the container never needs the network.
RUN python -c "from helpers.backbones import load_backbone; load_backbone()" \
    && mkdir -p hashtags models runs
EXPOSE 8888 5000 8866
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["hashtag-entrypoint", "healthcheck"]
ENTRYPOINT ["hashtag-entrypoint"]
CMD ["lab"]

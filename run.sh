#!/usr/bin/env bash
# The original workshop's "./run.sh": start the workshop image built by ./build.sh.
#   ./run.sh              JupyterLab with the notebooks; prints its URL (with the token)
#   ./run.sh api          the prediction API (./app.sh) on http://localhost:5000
#   ./run.sh voila        the Voila dashboard on http://localhost:8866
#   ./run.sh COMMAND...   anything else in the container, e.g. ./run.sh hashtag train
# hashtags/, models/ and runs/ are mounted from this folder: images, models and TensorBoard
# logs outlive the container. IMAGE (default hashtag-predictor); PORT, the port on this
# machine; BIND, the address it listens on (default 127.0.0.1: only this machine).
set -euo pipefail
cd "$(dirname "$0")"
IMAGE="${IMAGE:-hashtag-predictor}"
BIND="${BIND:-127.0.0.1}"

if ! command -v docker >/dev/null 2>&1; then
  echo "run.sh: docker is not installed here (https://docs.docker.com/get-docker/)." >&2
  exit 1
fi

mkdir -p hashtags models runs
args=(run --rm --init
      -v "$PWD/hashtags:/home/app/workshop/hashtags"
      -v "$PWD/models:/home/app/workshop/models"
      -v "$PWD/runs:/home/app/workshop/runs")
if [ -t 0 ] && [ -t 1 ]; then args+=(-it); fi

case "${1:-lab}" in
  lab | -*)
    port="${PORT:-8888}"
    token="${JUPYTER_TOKEN:-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}"
    args+=(-p "$BIND:$port:8888" -e "JUPYTER_TOKEN=$token")
    echo "JupyterLab: http://localhost:$port/lab?token=$token"
    ;;
  api)
    port="${PORT:-5000}"
    args+=(-p "$BIND:$port:5000")
    echo "API: http://localhost:$port/?picture=https://example.com/photo.jpg"
    ;;
  voila)
    port="${PORT:-8866}"
    args+=(-p "$BIND:$port:8866")
    echo "Voila dashboard: http://localhost:$port/"
    ;;
esac
exec docker "${args[@]}" "$IMAGE" "$@"

#!/usr/bin/env bash
# The original workshop's "./build.sh": build the Docker image from the Dockerfile here.
#   ./build.sh                         the workshop image: JupyterLab (default), API, Voila
#   ./build.sh smoke                   check the built workshop image: non-root, works offline,
#                                      JupyterLab starts and its HEALTHCHECK turns healthy
#   ./build.sh serve [MODEL_DIR]       the serving image, MODEL_DIR (default models/latest)
#                                      baked in, tagged with the run's name and latest
#   ./build.sh serve MODEL_DIR --push  ... and push both tags
#   ./build.sh published-model DEST    copy the model inside $SERVE_IMAGE:latest to DEST
#                                      (nothing when no image is published yet)
# IMAGE names the workshop image (default hashtag-predictor), SERVE_IMAGE the serving one
# (default $IMAGE-serve). Further arguments go to `docker build` (e.g. --pull).
set -euo pipefail
cd "$(dirname "$0")"
IMAGE="${IMAGE:-hashtag-predictor}"
SERVE_IMAGE="${SERVE_IMAGE:-$IMAGE-serve}"
MODEL_IN_IMAGE=/home/app/workshop/models/latest

if ! command -v docker >/dev/null 2>&1; then
  echo "build.sh: docker is not installed here (https://docs.docker.com/get-docker/)." >&2
  echo "Without Docker: make setup && make demo (the same install, see README)." >&2
  exit 1
fi

workshop() {
  # the container's user gets your ids, so what it writes into hashtags/ and models/ is yours
  local uid gid
  uid="$(id -u)" gid="$(id -g)"
  if [ "$uid" = 0 ]; then uid=1000 gid=1000; fi  # never run the image as root
  docker build --build-arg "APP_UID=$uid" --build-arg "APP_GID=$gid" -t "$IMAGE" "$@" .
  echo "built $IMAGE; start it with ./run.sh"
}

smoke() {
  docker run --rm --network none "$IMAGE" sh -c '
    set -e
    test "$(id -u)" != 0 || { echo "runs as root" >&2; exit 1; }
    python -c "from helpers.backbones import load_backbone; load_backbone()"
    hashtag --version && jupyter lab --version && voila --version'
  local id status="starting" i
  id="$(docker run -d --network none "$IMAGE")"
  for i in $(seq 1 60); do
    status="$(docker inspect --format '{{.State.Health.Status}}' "$id")"
    if [ "$status" != starting ]; then break; fi
    sleep 5
  done
  docker logs "$id" 2>&1 | tail -n 5
  docker rm -f "$id" >/dev/null
  if [ "$status" != healthy ]; then
    echo "build.sh smoke: JupyterLab is $status after $((i * 5)) s, not healthy" >&2
    exit 1
  fi
  echo "smoke test passed: $IMAGE runs offline as a non-root user and turns healthy"
}

serve() {
  local model="${1:-models/latest}" push=false run_dir run tag
  if [ "$#" -gt 0 ]; then shift; fi
  if [ "${1:-}" = --push ]; then push=true; shift; fi
  if [ ! -f "$model/saved_model.pb" ]; then
    echo "build.sh: no model in $model: train one first (make train, or hashtag train)" >&2
    exit 1
  fi
  run_dir="$(cd "$model" && pwd -P)"  # models/latest -> the run's own folder
  run="$(basename "$run_dir")"
  tag="$(printf '%s' "$run" | tr -c 'A-Za-z0-9_.-' '_' | cut -c1-128)"
  # the model is a named build context: models/ never enters the ordinary build context
  docker build --target serve --build-context "model=$run_dir" --build-arg "MODEL_NAME=$run" \
    -t "$SERVE_IMAGE:$tag" -t "$SERVE_IMAGE:latest" "$@" .
  echo "built $SERVE_IMAGE:$tag (also :latest), serving model $run on port 5000"
  if [ "$push" = true ]; then
    docker push "$SERVE_IMAGE:$tag"
    docker push "$SERVE_IMAGE:latest"
  fi
}

published_model() {
  local dest="${1:?usage: ./build.sh published-model DEST}" id status=0
  rm -rf "$dest"
  # a failed pull means nothing is published yet (or the registry login failed, and then
  # the push at the end fails too): the gate then publishes the first model
  if ! docker pull --quiet "$SERVE_IMAGE:latest"; then
    echo "no $SERVE_IMAGE:latest to pull: nothing published yet"
    return 0
  fi
  id="$(docker create "$SERVE_IMAGE:latest")"
  docker cp --follow-link "$id:$MODEL_IN_IMAGE" "$dest" || status=$?
  docker rm "$id" >/dev/null
  if [ "$status" != 0 ]; then return "$status"; fi
  echo "the model published in $SERVE_IMAGE:latest is now in $dest"
}

case "${1:-}" in
  smoke) shift; smoke ;;
  serve) shift; serve "$@" ;;
  published-model) shift; published_model "$@" ;;
  *) workshop "$@" ;;
esac

#!/usr/bin/env bash
# The original workshop's "./app.sh": start the prediction API on port 5000.
#   curl "http://localhost:5000/?picture=https://example.com/photo.jpg"
# Extra flags go to `hashtag serve` (see `hashtag serve --help`).
set -euo pipefail
cd "$(dirname "$0")"
if [ -x .venv/bin/hashtag ]; then HASHTAG=.venv/bin/hashtag; else HASHTAG=hashtag; fi
exec "$HASHTAG" serve --host "${HOST:-0.0.0.0}" --port "${PORT:-5000}" "$@"

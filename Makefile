# Two commands do everything: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
IMAGES ?= hashtags
HASHTAG = $(VENV)/bin/hashtag

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

# The workshop offline: a synthetic sample set if $(IMAGES) has no hashtag folders yet,
# then train -> (the summary shows test accuracy) -> predict one image of each hashtag.
demo: setup
	@if ! find $(IMAGES) -mindepth 2 -name '*.jpg' -print -quit 2>/dev/null | grep -q .; then \
		$(HASHTAG) sample --dest $(IMAGES); fi
	$(HASHTAG) train --image_dir $(IMAGES)
	$(HASHTAG) predict --model models/latest $$(for d in $(IMAGES)/*/; do \
		find "$$d" -maxdepth 1 -type f -iname '*.jp*g' | sort | head -n 1; done)

# lint first, then every test; notebooks run in quick mode on tiny data in .quick/
# (CI=true implies quick mode too)
test: setup lint
	HASHTAG_QUICK=1 $(PY) -m pytest

bench: setup
	$(PY) bench/bench_features.py
	$(PY) bench/bench_train.py
	$(PY) bench/bench_serve.py

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# ---- lint, serve, dashboard, Docker, and the delivery pipeline (.github/workflows/) ----
IMAGE       ?= hashtag-predictor
SERVE_IMAGE ?= $(IMAGE)-serve
TAGS        ?= $(HASHTAGS)
COUNT       ?= 100
SESSION     ?=
LOGIN       ?=
MODEL       ?= models/latest
PREVIOUS    ?= previous-model
export IMAGE SERVE_IMAGE

.PHONY: lint serve dashboard docker-build docker-run docker-smoke \
        scrape train evaluate previous-model publish-check docker-publish

# ruff (lint + format), notebooks committed without outputs, the Dockerfile, the scripts
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	@if grep -l '"output_type"' notebooks/*.ipynb; then \
		echo "these notebooks hold outputs: clear them before committing"; exit 1; fi
	$(VENV)/bin/hadolint Dockerfile
	$(VENV)/bin/shellcheck build.sh run.sh app.sh .ci/run

serve: setup
	./app.sh

dashboard: setup
	$(VENV)/bin/voila notebooks/dashboard.ipynb --port 8866 --no-browser

docker-build:
	./build.sh

docker-run:
	./run.sh

docker-smoke:
	./build.sh smoke

# The pipeline, one step per target: scrape -> train (evaluates on the test split) ->
# evaluate (the report) -> previous-model -> publish-check (the gate) -> docker-publish.
scrape: setup
	@test -n "$(TAGS)" || { echo "make scrape TAGS='tag1 tag2' (or set HASHTAGS)"; exit 2; }
	$(HASHTAG) scrape $(TAGS) -n $(COUNT) --dest $(IMAGES) \
		$(if $(SESSION),--session-file $(SESSION)) $(if $(LOGIN),--login $(LOGIN))

train: setup
	$(HASHTAG) train --image_dir $(IMAGES) --quiet

evaluate: setup
	$(HASHTAG) model-report $(MODEL)

previous-model:
	./build.sh published-model $(PREVIOUS)

publish-check: setup
	$(HASHTAG) publish-check $(MODEL) --against $(PREVIOUS)

docker-publish:
	./build.sh serve $(MODEL) --push

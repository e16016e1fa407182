# Two commands on a fresh machine: `make run` (the app on http://127.0.0.1:7860) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test test-fast lint bench figures browser clean second-seed

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

# The dev tools, and the package itself in editable mode (the `mrnet` console script).
$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt pyproject.toml
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# Debian's chromium for the browser tests (never `playwright install`: it downloads a browser).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

run: $(VENV)/.runtime
	$(PY) app.py

# The layers (import-linter contracts in pyproject.toml), ruff and mypy; any of them failing fails `make test`.
lint: $(VENV)/.dev
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy mrnet

# Everything, on 3 pytest-xdist workers (the tests wait on browsers and servers a third of the time: on 2 cores,
# 3 workers took 15:21 against 17:45 for 2 and 16:10 for 4), one test at a time to each worker, the long ones
# first; the 25 slowest tests are listed at the end.
test: lint browser
	node --test tests/js/
	$(PY) -m pytest -q -rf -n 3 --maxschedchunk 1 --durations=25 tests

# The inner loop: no browser, no hub server, nothing marked slow.
test-fast: $(VENV)/.dev
	node --test tests/js/
	$(PY) -m pytest -q -rf -n 2 -m "not browser and not hub and not slow" tests

bench: $(VENV)/.runtime
	$(PY) -m mrnet bench

# The README's images, into docs/figures/ (no test writes into tracked files).
figures: $(VENV)/.dev browser
	$(PY) -m mrnet figure --out docs/figures/phantoms.png
	$(PY) -m mrnet figure --kind deletion --out docs/figures/deletion.png
	$(PY) -m mrnet figure --kind randomization --out docs/figures/randomization.png
	MRNET_SCREENSHOT=docs/figures/app.png $(PY) -m pytest -q tests/test_browser.py
	MRNET_SCREENSHOT_CASES=docs/figures/cases.png $(PY) -m pytest -q tests/test_cases_browser.py -k filter_open
	MRNET_SCREENSHOT_COMPARE=docs/figures/compare.png MRNET_SCREENSHOT_COMPARE_VIEWER=docs/figures/compare-viewer.png \
		$(PY) -m pytest -q tests/test_cases_browser.py -k compare_mode
	MRNET_SCREENSHOT_PHONE=docs/figures/phone $(PY) -m pytest -q tests/test_phone_browser.py -k "no_horizontal or cases_tab"

# Repeatability (#39): the shipped recipe (weights/config.json's training_command) trained again with another seed,
# on the same phantoms. Hours of CPU: run it in the background; run it again to resume from its checkpoints.
# RUNS outside the work tree survives a fresh checkout on the same machine.
RUNS ?= data
SEED ?= 100
second-seed: $(VENV)/.dev
	test -f $(RUNS)/phantoms/train-abnormal.csv || $(PY) -m mrnet phantom --out $(RUNS)/phantoms --n-train 300 --n-valid 80 --seed 0 --workers 1
	$(PY) -m mrnet train --data $(RUNS)/phantoms --out $(RUNS)/weights-seed$(SEED) --epochs 1 --patience 1 --slice-steps 4000 \
		--plane-slice-steps sagittal=2000 coronal=6000 --hard-negatives 4 --stage1-positive-head --mask-weight 0 --no-progress \
		--seed $(SEED) --threads 1 $$(test -d $(RUNS)/weights-seed$(SEED)/checkpoints && echo --resume)

clean:
	rm -rf $(VENV) .pytest_cache

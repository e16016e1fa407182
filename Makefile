# Two commands on a fresh machine: `make run` (the app on http://127.0.0.1:7860) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: run test bench browser clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Debian's chromium for the browser tests (never `playwright install`: it downloads a browser).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

run: $(VENV)/.runtime
	$(PY) app.py

test: $(VENV)/.dev browser
	$(PY) -m pytest -q -rf tests

bench: $(VENV)/.runtime
	$(PY) -m mrnet bench

clean:
	rm -rf $(VENV) .pytest_cache

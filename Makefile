# Two commands do all the set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# mitmproxy 12 needs Python 3.12+; the recorder is also tested there when one is installed.
PYTHON_NEXT ?= $(shell for p in python3.12 python3.13 $$HOME/.pyenv/versions/3.1[23]*/bin/python; do \
	"$$p" -c "import sys" >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
VENV_NEXT ?= .venv-next

.PHONY: setup demo test test-next lint samples bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark]'
	touch $@

demo: setup
	$(BIN)/python -m analyzer.peer.demo --out demo-out

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	sh scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory test-next

# The addon and recorder end to end under the newest mitmproxy (12.x).
test-next:
ifeq ($(PYTHON_NEXT),)
	@echo "test-next: no python3.12/3.13 here; mitmproxy 12 not tested"
else
	test $(VENV_NEXT)/.installed -nt pyproject.toml || { $(PYTHON_NEXT) -m venv $(VENV_NEXT) && \
		$(VENV_NEXT)/bin/pip install -q -e '.[dev]' && touch $(VENV_NEXT)/.installed; }
	$(VENV_NEXT)/bin/python -c "import mitmproxy.version as v; print('mitmproxy', v.VERSION)"
	$(VENV_NEXT)/bin/python -m pytest -q -p no:cacheprovider tests/test_addon_unit.py \
		tests/test_recording.py tests/test_e2e_capture.py tests/test_peer_e2e.py \
		tests/test_writer_process.py tests/test_contentview.py tests/test_keep_messages_e2e.py \
		tests/test_tls_e2e.py tests/test_import.py tests/test_record.py
endif

samples: setup
	$(BIN)/python samples/make_samples.py

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(VENV_NEXT) demo-out captures

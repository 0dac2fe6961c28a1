# FocusQA — two commands on a fresh machine:
#   make demo   creates .venv, installs the core, runs the main job on the embedded sample
#   make test   installs system packages (as root) and every extra, then ruff, mypy, pytest
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SYSTEM_PACKAGES := xvfb xauth libgl1 libegl1 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 \
	libxcb-xinerama0 libxcb-shape0 libxcb-xkb1 libxcb-randr0 libxcb-render-util0 libxcb-image0 \
	libxcb-cursor0 libdbus-1-3 libfontconfig1 default-jre-headless default-jre libij-java

.PHONY: demo test lint bench system-deps clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.core: $(PY) pyproject.toml
	$(PIP) install -q -e .
	touch $@

$(VENV)/.all: $(PY) pyproject.toml
	$(PIP) install -q -e ".[all,test]"
	touch $@

demo: $(VENV)/.core
	$(VENV)/bin/focusqa demo --out demo_out

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "NOTE: not root; GUI/Java tests need these Debian packages:$$missing"; \
	    echo "      (sudo apt-get install$$missing) — those tests will skip without them"; \
	  fi; \
	fi

lint: $(VENV)/.all
	$(PY) -m ruff check .
	$(PY) -m mypy

test: system-deps $(VENV)/.all lint
	$(PY) -m pytest

bench: $(VENV)/.all
	$(PY) benchmarks/bench_core.py

clean:
	rm -rf $(VENV) demo_out dist build

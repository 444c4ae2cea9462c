# abbe: two commands set everything up on a fresh machine.
#   make demo   create .venv, install, run the main job on bundled data and a bundled model
#   make test   same set-up, then the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format install clean system-packages

# Debian packages the napari tests need: a virtual display (Xvfb) and the X libraries Qt loads
# (without icccm4/keysyms1/xinerama0 Qt aborts). Installed only when one is missing, so a second
# run does nothing; skipped with a note where apt-get is absent or we are not root.
SYSTEM_PACKAGES := xvfb xauth libgl1-mesa-dri libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 \
	libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0 libxcb-xfixes0 libxkbcommon-x11-0

system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null || [ "$$(id -u)" != 0 ]; then \
		echo "note: cannot install $$missing (needs apt-get as root); napari tests will be skipped"; exit 0; fi; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null

install: $(STAMP)

# torch first: the CPU build on this machine's disk. A bare "torch" would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/abbe demo -o demo_output --overwrite

test: $(STAMP) system-packages
	@# under a virtual display when there is one, so napari's viewer can draw
	$$(command -v xvfb-run >/dev/null && echo xvfb-run -a) $(PY) -m pytest -n 2 --dist loadgroup --durations=15

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache

# hsigen: `make demo` and `make test` work on a fresh machine; both create .venv when missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# A CPU build of torch, installed explicitly first so the project's own "torch" requirement
# is already satisfied (a bare "pip install torch" may pull several GB of CUDA wheels).
TORCH_SPEC ?= torch==2.13.0
DEMO_DIR ?= runs/demo

.PHONY: install lint test test-fast demo pretrained bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# ruff comes with the dev extras, so lint needs the venv like the tests do.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# One OpenMP thread per process (as in the demo): the test models are tiny, and two threads per
# process made training many times slower whenever anything else ran on this 2-core machine.
# One pytest-xdist worker per core (TEST_WORKERS=0: no workers), each stage's directory on one
# worker (tests/conftest.py), so every session fixture is still trained once.
TEST_WORKERS ?= auto
PYTEST = HF_HUB_OFFLINE=1 OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

test: $(STAMP)
	$(PYTEST) --durations=15

# Everything but the tests marked slow (those that train for long): under 3 minutes here.
test-fast: $(STAMP)
	$(PYTEST) -m "not slow" --durations=15

demo: $(STAMP)
	HF_HUB_OFFLINE=1 DEMO_DIR=$(DEMO_DIR) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/demo.sh

# Retrain the pretrained models shipped in stages/pretrained/models (three lanes side by side on 2 cores,
# the longest, latent, about 75 minutes; examples/pretrain.py),
# each with its provenance.json; `hsigen pretrained` lists them.
pretrained: $(STAMP)
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) examples/pretrain.py --work runs/pretrain

bench: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; HF_HUB_OFFLINE=1 $(PY) $$b || exit 1; done

clean:
	rm -rf $(DEMO_DIR) .pytest_cache

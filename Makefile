# The two commands a newcomer runs: `make demo` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# Reproduction knobs (see README): noise rule, seeds, launcher, data folder.
NOISE_MODE ?= block
SEEDS ?= 0
COMPARE_SEEDS ?= 0,1,2   # make compare-losses: several seeds, for the intervals
LAUNCHER ?= basic
DATA ?= data
EXTRA ?=

.PHONY: setup test check-wheel lint bench bench-data demo reproduce-cifar reproduce-imagenet sweep-tau \
	compare-losses compare-losses-demo tables clean

# The loss's CPU kernel compiles once (about 30 s) and is cached; without a compiler the
# PyTorch implementation is used.
setup: $(STAMP)
	@$(PY) -c "from smooth_topk import cpu_kernel; print('smooth_topk CPU kernel:', cpu_kernel.status())"

# Installs both parts editable: the loss library (smooth-topk/) and the framework (topk_repro).
# Re-installs only when a pyproject.toml changes; torch comes from the local wheel cache when present.
$(STAMP): pyproject.toml smooth-topk/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e "./smooth-topk[kernel,test]" -e ".[dev]"
	touch $(STAMP)

# Both test suites: the framework's (tests/) and the loss library's (smooth-topk/tests/).
test: setup
	$(PY) -m pytest -q

# The loss distribution as users get it: build the wheel, install it in a fresh virtual
# environment with torch and nothing of this repository, run the library's tests there (CI).
check-wheel: setup
	bash scripts/check_wheel.sh

lint: setup
	$(VENV)/bin/ruff check src scripts tests smooth-topk conftest.py
	$(VENV)/bin/ruff format --check src scripts tests smooth-topk conftest.py

bench: setup
	$(PY) scripts/bench_loss.py --out results/bench_loss.json

bench-data: setup
	$(PY) scripts/bench_data.py --out results/bench_data.json

demo: setup
	$(PY) scripts/demo.py

reproduce-cifar: setup
	$(PY) scripts/sweep_noise.py --noise-mode $(NOISE_MODE) --seeds $(SEEDS) \
		--launcher $(LAUNCHER) --data $(DATA) $(EXTRA)
	$(PY) scripts/make_tables.py --runs-dir runs --out-dir results

reproduce-imagenet: setup
	$(PY) scripts/sweep_sizes.py --seeds $(SEEDS) --launcher $(LAUNCHER) --data $(DATA) $(EXTRA)
	$(PY) scripts/make_tables.py --runs-dir runs --out-dir results

sweep-tau: setup
	$(PY) scripts/sweep_tau.py --seeds $(SEEDS) --launcher $(LAUNCHER) --data $(DATA) $(EXTRA)
	$(PY) scripts/make_tables.py --runs-dir runs --out-dir results

# Every top-k and noise-robust loss under the Table 1 protocol (GPU), then the tables.
compare-losses: setup
	$(PY) scripts/sweep_losses.py --seeds $(COMPARE_SEEDS) --launcher $(LAUNCHER) \
		--data $(DATA) $(EXTRA)
	$(PY) scripts/make_tables.py --runs-dir runs --out-dir results

# The same comparison sized for a CPU on the synthetic set (a few minutes on 2 cores).
compare-losses-demo: setup
	$(PY) scripts/sweep_losses.py --demo --seeds 0,1,2 --runs-dir runs $(EXTRA)
	$(PY) scripts/make_tables.py --runs-dir runs/compare_losses_demo \
		--out-dir results/compare_losses_demo

tables: setup
	$(PY) scripts/make_tables.py --runs-dir runs --out-dir results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache smooth-topk/dist

# The two commands a newcomer runs: `make demo` and `make test`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
# Reproduction knobs (see README): noise rule, seeds, launcher, data folder.
NOISE_MODE ?= block
SEEDS ?= 0
COMPARE_SEEDS ?= 0,1,2   # make compare-losses: several seeds, for the intervals
TAU_NOISE ?= 0.0         # make sweep-tau: the noise level of the tau study
DRY_RUN ?=
LAUNCHER ?= basic
DATA ?= data
EXTRA ?=

.PHONY: setup test test-full coverage mutation check-wheel lint bench bench-data demo reproduce-cifar reproduce-imagenet sweep-tau \
	compare-losses compare-losses-demo study-cpu data-size-cpu tables docs-figures sync-wandb clean

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

# The quick suite of both parts, the framework's (tests/) and the loss library's
# (smooth-topk/tests/): every test not marked slow or interpreter (see pyproject.toml).
QUICK = -m "not slow and not interpreter" -n auto --dist loadgroup
test: setup
	$(PY) -m pytest -q $(QUICK)

# Every test, on every core (CI runs this).
FULL = -n auto --dist loadgroup
test-full: setup
	$(PY) -m pytest -q $(FULL)

# Line coverage of both packages (in-process code; the subprocesses' is not counted), for the
# whole suite, or for the quick one with SUITE=quick.
SUITE ?= full
coverage: setup
	$(PY) -m pytest -q $(if $(filter quick,$(SUITE)),$(QUICK),$(FULL)) \
		--cov=src/topk_repro --cov=smooth-topk/src/smooth_topk --cov-report=term

# Mutation testing of the modules whose errors would be silent (scripts/mutation.py; not in CI:
# every mutant runs its module's tests). LIMIT=10 tries 10 mutants per module, evenly spread.
LIMIT ?=
mutation: setup
	$(PY) scripts/mutation.py $(if $(LIMIT),--limit $(LIMIT),)

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

# The studies: each grid is in its preset, configs/experiment/<study>.yaml, and Hydra runs it.
# DRY_RUN=1 prints the runs and their estimated GPU-hours instead, touching no file.
STUDY_OPTIONS = launcher=$(LAUNCHER) paths.data_dir=$(DATA)
study = $(if $(DRY_RUN),$(PY) scripts/plan_sweep.py,$(PY) src/train.py -m) experiment=$(1) \
	$(STUDY_OPTIONS) $(2) $(EXTRA)
tables_unless_dry_run = $(if $(DRY_RUN),,$(PY) scripts/make_tables.py $(1))

reproduce-cifar: setup
	$(call study,cifar100_noise,seed=$(SEEDS) dataset.noise.mode=$(NOISE_MODE))
	$(call tables_unless_dry_run,--runs-dir runs --out-dir results)

reproduce-imagenet: setup
	$(call study,imagenet_subsets,seed=$(SEEDS))
	$(call tables_unless_dry_run,--runs-dir runs --out-dir results)

# tau in {0.01, 0.1, 1, 10}, then the hard hinge (the tau -> 0 row), at noise p = TAU_NOISE.
sweep-tau: setup
	$(call study,cifar100_tau,seed=$(SEEDS) dataset.noise.p=$(TAU_NOISE))
	$(call study,cifar100_tau_hard,seed=$(SEEDS) dataset.noise.p=$(TAU_NOISE))
	$(call tables_unless_dry_run,--runs-dir runs --out-dir results)

# Every top-k and noise-robust loss under the Table 1 protocol (GPU), then the tables.
compare-losses: setup
	$(call study,compare_losses,seed=$(COMPARE_SEEDS))
	$(call tables_unless_dry_run,--runs-dir runs --out-dir results)

# The same comparison sized for a CPU on the synthetic set (its preset holds 3 seeds).
compare-losses-demo: setup
	$(call study,compare_losses_demo,)
	$(call tables_unless_dry_run,--runs-dir runs/compare_losses_demo \
		--out-dir results/compare_losses_demo)

# The paper's questions at a CPU scale, sized to test its claims (3 seeds, paired intervals) on
# the harder synthetic set: Table 1's (CE vs L_{5,1} at p in {0, 0.4, 0.8}) and Table 2's (clean
# labels, 5 to 40 images per class). Two single-threaded runs at a time; measured costs and
# results: docs/cpu-studies.md.
study-cpu data-size-cpu: LAUNCHER = joblib
study-cpu data-size-cpu: export OMP_NUM_THREADS = 1
study-cpu data-size-cpu: setup
	$(call study,$(subst -,_,$@),)
	$(call tables_unless_dry_run,--runs-dir runs/$(subst -,_,$@) --out-dir results/$(subst -,_,$@))

tables: setup
	$(PY) scripts/make_tables.py --runs-dir runs --out-dir results

# The CPU studies' figures and tables the manual shows, copied into docs/img/ with their sources
# (after make demo, make study-cpu and make data-size-cpu).
docs-figures: setup
	$(PY) scripts/docs_figures.py

# Upload the offline W&B runs below RUNS (a sweep's folder), oldest segment first.
RUNS ?= runs
sync-wandb: setup
	$(PY) scripts/sync_wandb.py $(RUNS) $(if $(DRY_RUN),--dry-run,)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache smooth-topk/dist

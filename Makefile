# Every target is idempotent: a second `make install` only checks stamps and returns in seconds.
#
#   make install   system packages (when root and missing) + .venv with the pinned dependencies
#   make demo      the mini recipes: pre-training (ssl1), then CTC fine-tuning from it (asr1), RESULTS
#   make test      ruff, then the test suite (what .ci/run calls)
#   make gpu-check the prepared GPU check (docs/benchmarks.md, "GPU check"): at most 7 minutes on one GPU

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The venv stamp depends on pyproject.toml: editing the dependencies re-installs them.
VENV_STAMP := $(VENV)/.installed
SYS_STAMP := $(VENV)/.sysdeps
SYS_PACKAGES := sox flac sctk espeak-ng libsndfile1 flite fortunes
PYTEST_ARGS ?=

.PHONY: install sysdeps demo test clean-demo gpu-check

install: $(SYS_STAMP) $(VENV_STAMP)

# Debian packages the recipes use: sox/flac (audio), sctk (sclite, the reference scorer),
# espeak-ng (regenerates the mini corpus), flite and fortunes (egs2/synth generates its corpus with
# them). Installed only when root and missing; re-checked when this file changes.
$(SYS_STAMP): Makefile
	@missing=""; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	command -v flac >/dev/null || missing="$$missing flac"; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v flite >/dev/null || missing="$$missing flite"; \
	[ -f /usr/share/games/fortunes/wisdom ] || missing="$$missing fortunes"; \
	{ command -v sclite >/dev/null || [ -x /usr/lib/sctk/bin/sclite ]; } || missing="$$missing sctk"; \
	ldconfig -p 2>/dev/null | grep -q libsndfile || missing="$$missing libsndfile1"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "WARNING: missing system packages:$$missing (not root: install them yourself)" >&2; \
	  fi; \
	fi
	@mkdir -p $(VENV) && touch $@

$(VENV_STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@# (grep drops pip's notes about this machine's absent local package indexes)
	set -o pipefail; $(PY) -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 \
	  | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@touch $@

# The mini recipe end to end: pre-train the mini wav2vec 2.0 preset on the mini corpus and ~1 h of
# generated English speech (ssl1), fine-tune it with CTC from its last checkpoint, decode and score
# (asr1). Side jobs: asr1's data preparation (stages 1-5, ~25 s; log egs2/mini/asr1/exp/data_prep.log)
# runs beside the pre-training's first stages, and ssl1's backbone export and report (stages 12-13,
# ~30 s; log egs2/mini/ssl1/exp/export_report.log) beside asr1's statistics and fine-tuning, which
# start from the pre-training's last checkpoint (checkpoints/<N>updates.pth, written by stage 11).
# ~9-12 min on 2 CPU cores (egs2/mini/README.md).
# The CER (%) range per test set that the demo's runs fall in over seeds and machines
# (egs2/mini/README.md); make demo's last lines say whether this run is inside it.
DEMO_CER_RANGES := --range dev=22:38 --range test=10:34
DEMO_CER_SEEN := seeds 0-2, two 2-core AMD EPYC machines
demo: install
	@mkdir -p egs2/mini/asr1/exp; \
	(cd egs2/mini/asr1 && ./run.sh --stop_stage 5 > exp/data_prep.log 2>&1) & prep=$$!; \
	(cd egs2/mini/ssl1 && ./run.sh --stop_stage 11 --ssl_exp_file exp/demo_experiment) \
	  || { kill $$prep 2>/dev/null; exit 1; }; \
	wait $$prep || { echo "egs2/mini/asr1 data preparation failed: see egs2/mini/asr1/exp/data_prep.log" >&2; exit 1; }
	@(cd egs2/mini/ssl1 && ./run.sh --stage 12 > exp/export_report.log 2>&1) & post=$$!; \
	(cd egs2/mini/asr1 && ./run.sh --stage 10 --pretrained "../ssl1/$$(cat ../ssl1/exp/demo_experiment)" \
	  --asr_exp_file exp/demo_experiment) \
	  || { wait $$post; exit 1; }; \
	wait $$post || { echo "egs2/mini/ssl1 stages 12-13 failed: see egs2/mini/ssl1/exp/export_report.log" >&2; exit 1; }
	@echo; echo "==== egs2/mini/ssl1 pre-training ===="; sed -n '/^|stat/,/^$$/p' "egs2/mini/ssl1/$$(cat egs2/mini/ssl1/exp/demo_experiment)/report.md"
	@echo "==== egs2/mini/asr1 RESULTS ===="; cat "egs2/mini/asr1/$$(cat egs2/mini/asr1/exp/demo_experiment)/RESULTS.md"
	@$(PY) -m espnet_ext.bin.check_range "egs2/mini/asr1/$$(cat egs2/mini/asr1/exp/demo_experiment)" \
	  --decode_glob 'decode_ctc_greedy_*' $(DEMO_CER_RANGES) --seen "$(DEMO_CER_SEEN)"

# Two pytest workers, each given whole test files (a module's recipe run is shared by its tests),
# each torch on one thread (two 2-thread trainings on 2 cores spin against each other);
# the 30 slowest tests are listed at the end. PYTEST_ARGS="-n 0" runs in one process.
PYTEST_WORKERS ?= 2
# ruff (format and lint, pyproject.toml [tool.ruff]) runs first: a second.
test: install
	$(VENV)/bin/ruff format --check --quiet . || { echo "ruff format: run '$(VENV)/bin/ruff format .'" >&2; exit 1; }
	$(VENV)/bin/ruff check --quiet .
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile \
	  --durations=30 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc = 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; exit $$rc

# Throughput against the references (fp32, bf16), decoding RTF, torch.compile, a short real pre-training
# with its sync check, the environment: gpu_check.md, gpu_check.json and logs in $(GPU_CHECK_OUT).
# No install step (a lent GPU machine has no network): PY=python3 uses another python.
# GPU_CHECK_ARGS="--quick" for tiny sizes, "--quick --device cpu" without a GPU (~1 min on 2 idle cores).
GPU_CHECK_OUT ?= gpu_check
GPU_CHECK_ARGS ?=
gpu-check:
	$(PY) -m benchmarks gpu --out $(GPU_CHECK_OUT) $(GPU_CHECK_ARGS)

clean-demo:
	rm -rf egs2/mini/asr1/{data,dump,exp} egs2/mini/ssl1/{data,dump,exp}

# The two commands that matter (see README): `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/xai-gen: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[dev,docs,quantus,ray,monai,dicom]"
	touch $@

.PHONY: install demo test bench docs docs-figures serve bundles
install: $(BIN)/xai-gen

demo: install
	$(BIN)/xai-gen compare --data all --methods all --out report --reuse

# Rebuilds the pretrained bundles shipped in xai_gen/bundles/data (tens of minutes on a CPU;
# checkpoints under runs/bundle-build, so a killed build resumes).
bundles: install
	$(BIN)/xai-gen bundle build all --preset full --out xai_gen/bundles/data

test: install
	$(BIN)/ruff check xai_gen tests baselines benchmarks docs
	$(BIN)/python -m pytest --doctest-modules xai_gen tests
	$(BIN)/mkdocs build --strict --quiet

bench: install
	$(BIN)/python -m pytest benchmarks --benchmark-only

docs: install
	$(BIN)/mkdocs build --strict

serve: install
	$(BIN)/mkdocs serve

# Regenerates docs/figures and docs/generated from runs/ and report/ (run after `make demo`).
docs-figures: install
	$(BIN)/python docs/gen_figures.py

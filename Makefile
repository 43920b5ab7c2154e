# One entry point for contributors and CI. `make help` lists the targets.
# Every target creates what it needs first (.venv, node_modules, vendored KaTeX, figures), so a fresh clone
# needs only `make serve` or `make test`.

SHELL      := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON     ?= python3
VENV       := .venv
PY         := $(VENV)/bin/python
PORT       ?= 8000
export NO_MKDOCS_2_WARNING := 1
export PYTHONHASHSEED := 0
# `make live LANG=en` picks the language, but make also exports that LANG to the recipes: UTF-8 mode keeps Python's
# file encoding independent of the locale either way.
export PYTHONUTF8 := 1
# Snippets and tests use the torch backend unless told otherwise; `make test-backends` runs the other two.
export KERAS_BACKEND ?= torch

say = @printf '\n\033[1;34m==> %s\033[0m\n' "$(1)"

.PHONY: help setup serve test lint format site live figures notebooks vendor test-fast test-backends bench \
        translation-status sync-translation clean distclean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-20s %s\n",$$1,$$2}'

# --- set-up ------------------------------------------------------------------------------------------------
$(PY):
	$(call say,Creating $(VENV) (pip 25.3))
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==25.3

$(VENV)/.installed: requirements.txt | $(PY)
	$(call say,Installing pinned Python packages (requirements.txt))
	$(PY) -m pip install --progress-bar off -r requirements.txt
	touch $@

# The lint tools have their own stamp, so that `make lint` (the first step of `make test`) needs only them.
$(VENV)/.dev-installed: requirements-dev.txt requirements.txt | $(PY)
	$(call say,Installing the pinned lint tools (requirements-dev.txt: ruff, codespell, zizmor, check-jsonschema))
	$(PY) -m pip install --progress-bar off -r requirements-dev.txt
	touch $@

node_modules/.package-lock.json: package.json package-lock.json
	$(call say,Installing pinned front-end packages (KaTeX, axe-core) with npm ci)
	npm ci --no-audit --no-fund --loglevel=error

docs/assets/vendor/.stamp: node_modules/.package-lock.json
	$(call say,Copying KaTeX's CSS and fonts into docs/assets/vendor (served by the site itself, no CDN))
	rm -rf docs/assets/vendor && mkdir -p docs/assets/vendor/katex/fonts
	cp node_modules/katex/dist/katex.min.css docs/assets/vendor/katex/
	cp node_modules/katex/dist/fonts/*.woff2 docs/assets/vendor/katex/fonts/
	cp node_modules/katex/LICENSE docs/assets/vendor/katex/LICENSE.txt
	touch $@

setup: $(VENV)/.installed $(VENV)/.dev-installed docs/assets/vendor/.stamp ## Create .venv, install the pinned packages and lint tools, vendor KaTeX

# --- content -----------------------------------------------------------------------------------------------
figures: setup ## Run the experiments and draw every figure (cached: unchanged runs are skipped)
	$(call say,Figures and experiment results (snippets/experiments))
	$(PY) experiments/make_figures.py
	$(PY) snippets/benchmarks/model_parallel_figure.py

notebooks: setup ## Regenerate the tutorial .ipynb files from their jupytext sources
	$(call say,Notebooks from jupytext sources)
	$(PY) snippets/notebooks/build_notebooks.py

site: figures notebooks ## Build both languages into site/ (Korean at /, English at /en/), strict
	$(call say,Building the Korean site (mkdocs.yml -> site/))
	$(PY) -m mkdocs build --strict -f mkdocs.yml
	$(call say,Building the English site (mkdocs.en.yml -> site/en/))
	$(PY) -m mkdocs build --strict -f mkdocs.en.yml
	@printf 'Built %s files, %s in site/\n' "$$(find site -type f | wc -l)" "$$(du -sh site | cut -f1)"

serve: site ## Set up, build both languages and serve them on http://127.0.0.1:$(PORT)
	$(call say,Serving site/ on http://127.0.0.1:$(PORT)/ (Korean) and http://127.0.0.1:$(PORT)/en/ (English). Ctrl-C stops.)
	$(PY) -m http.server $(PORT) --bind 127.0.0.1 --directory site

live: figures notebooks ## Live-reload one language while writing: make live LANG=en
	$(PY) -m mkdocs serve -a 127.0.0.1:$(PORT) -f $(if $(filter en,$(LANG)),mkdocs.en.yml,mkdocs.yml)

# --- checks ------------------------------------------------------------------------------------------------
.PHONY: lighthouse
RUNS ?= 1
lighthouse: site ## Lighthouse (pinned in package.json) on every page of both languages, mobile: test-results/lighthouse.md (PAGES="/ /en/" RUNS=3)
	$(call say,Lighthouse on every page of site/: Debian's Chromium, mobile preset, gzip on 127.0.0.1)
	$(PY) tests/browser/lighthouse_report.py --runs $(RUNS) $(PAGES)

# `make test` checks committed generated files (the notebooks) as they are: it must never regenerate them first.
test: lint figures ## Lint, then the whole suite: snippets, Keras (torch backend), figures, strict builds, browser
	$(call say,pytest: the whole suite (KERAS_BACKEND=$(KERAS_BACKEND)))
	$(PY) -m pytest

# English text only: the Korean pages (docs/ko) are not spell-checked; skipped files are listed in .codespellrc.
SPELL_PATHS := docs/en docs/hooks docs/overrides docs/assets/javascripts docs/assets/stylesheets docs/assets/explorer snippets tests \
               README.md CONTRIBUTING.md .github .ci Makefile mkdocs.yml mkdocs.en.yml pytest.ini ruff.toml

lint: $(VENV)/.dev-installed ## Lint: ruff, spelling (codespell), workflow audit (zizmor), workflow schemas
	$(call say,ruff check: lint every Python file (rules in ruff.toml))
	$(VENV)/bin/ruff check .
	$(call say,ruff format --check: every Python file formatted as ruff would (make format applies it))
	$(VENV)/bin/ruff format --check .
	$(call say,codespell: spelling of the English text (.codespellrc; field terms in .codespell-words))
	$(VENV)/bin/codespell $(SPELL_PATHS)
	$(call say,zizmor --offline: security audit of .github (pinned actions, credentials, permissions, triggers))
	$(VENV)/bin/zizmor --offline --no-progress .github/
	$(call say,check-jsonschema: workflows; dependabot.yml; issue forms (against the vendored schemas, offline))
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-issue-forms \
	    $(filter-out %/config.yml,$(wildcard .github/ISSUE_TEMPLATE/*.yml))
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-issue-config .github/ISSUE_TEMPLATE/config.yml

format: $(VENV)/.dev-installed ## Apply ruff's fixes and formatting to every Python file
	$(call say,ruff check --fix and ruff format)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-fast: setup ## Snippet and unit tests only (no site build, no browser)
	$(PY) -m pytest -m "not site"

$(VENV)/.backends: $(VENV)/.installed requirements-backends.txt
	$(call say,Installing the JAX and TensorFlow backends for Keras (requirements-backends.txt))
	$(PY) -m pip install --progress-bar off -r requirements-backends.txt
	touch $@

test-backends: $(VENV)/.backends ## Run the Keras tests under the jax and tensorflow backends too
	$(call say,Keras tests with KERAS_BACKEND=jax)
	KERAS_BACKEND=jax $(PY) -m pytest tests/keras -p no:cacheprovider
	$(call say,Keras tests with KERAS_BACKEND=tensorflow)
	KERAS_BACKEND=tensorflow $(PY) -m pytest tests/keras -p no:cacheprovider

bench: setup ## Time the heads, Partial FC, the chunked loss and the model-parallel head (rewrites snippets/benchmarks/results*)
	$(PY) snippets/benchmarks/bench_heads.py
	$(PY) snippets/benchmarks/bench_large_scale.py

translation-status: ## Show which translated pages are in sync with their source
	$(PY) docs/hooks/translation.py status

sync-translation: ## After updating a translation: make sync-translation PAGE=en/arcface.md
	$(PY) docs/hooks/translation.py sync $(PAGE)

clean: ## Remove the built site and generated figures (keeps .venv and the experiment cache)
	rm -rf site docs/assets/figures docs/assets/results

distclean: clean ## Remove everything generated, .venv and node_modules included
	rm -rf $(VENV) node_modules docs/assets/vendor .cache

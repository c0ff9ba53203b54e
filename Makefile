# HelioGrid: one entry point for the lab demo and the tests. Every target does its own set-up and
# re-uses what is already built (virtualenv, base images, geth archives), so re-runs are fast.
#   make demo    bring up the lab and apply site.yml to it
#   make test    lint, unit tests, role scenarios and the system test
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(VENV)/bin:$(PATH)
export HELIOGRID_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/heliogrid
PIP_REQS := pyproject.toml contracts/pyproject.toml $(wildcard files/*/pyproject.toml)
IMAGES := trixie-amd64 bookworm-amd64 trixie-arm64
IMAGE_TARGETS := $(addprefix image-,$(IMAGES))
PLAYBOOKS := site.yml $(wildcard playbooks/*.yml)

.PHONY: help setup host venv images $(IMAGE_TARGETS) geth wheels locks lab-up lab-down lab-status demo test lint unit integration molecule system bench clean

help:
	@echo "make demo        set up everything, bring up the lab, apply site.yml, print where to look"
	@echo "make test        set up everything and run lint, unit, role (molecule) and system tests"
	@echo "make lab-up | lab-status | lab-down    manage the lab containers"
	@echo "make bench       run the benchmarks (prints figures, writes docs/benchmarks.md)"

# The base images, the geth builds, the virtualenv and the wheelhouse share nothing but the host's packages: they are
# built side by side once those are in (the arm64 image, the longest, starts without waiting for the virtualenv).
setup:
	@$(MAKE) --no-print-directory -j 6 --output-sync=target $(IMAGE_TARGETS) geth wheels

# promtool and amtool for the alert-rule tests (unit tier): unpacked from Debian's packages, nothing installed.
host:
	@lab/setup-host.sh
	@lab/fetch-promtool.sh

venv: $(VENV)/.installed
# --no-compile: byte-compiling every module of the ansible package took 28 s of CPU (of 37 s for that package,
# 2026-12-03) beside the image and geth builds; Python compiles the few modules a run imports when it first does.
$(VENV)/.installed: $(PIP_REQS) | host
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q --no-compile -e . -e contracts $(foreach p,$(wildcard files/*/pyproject.toml),-e $(dir $(p)))
	@touch $@

images: $(IMAGE_TARGETS)
$(IMAGE_TARGETS): image-%: host
	@lab/build-image.sh $(firstword $(subst -, ,$*)) $(lastword $(subst -, ,$*))

geth: host
	@lab/build-geth.sh amd64 arm64

wheels: venv
	@lab/build-wheelhouse.sh

# After changing a dependency of files/*/pyproject.toml: the hashed locks the roles and the wheelhouse install from.
locks: venv
	@lab/compile-locks.sh

lab-up: setup
	$(PY) lab/lab.py up

lab-status: venv
	@$(PY) lab/lab.py status
	@ansible miners:stats:pis -m ansible.builtin.ping 2>/dev/null | grep -E "SUCCESS|UNREACHABLE|FAILED" || true

lab-down: venv
	$(PY) lab/lab.py down

demo: lab-up
	ansible-playbook site.yml
	ansible-playbook playbooks/status.yml
	@$(PY) lab/summary.py

lint: venv
	ruff check .
	ruff format --check .
	ansible-lint --profile production
	@ansible-playbook --syntax-check $(PLAYBOOKS) >/dev/null && echo "syntax-check: $(words $(PLAYBOOKS)) playbooks ok"
	@ansible-playbook -i inventories/example site.yml --syntax-check >/dev/null && echo "syntax-check: inventories/example ok"

# Fast tests: filters, templates, contracts on an in-process EVM, the Python packages' own tests.
# Any set of tests runs in one pytest process from the root (`pytest tests/contracts/test_market.py::test_x`).
UNIT_DIRS := tests/unit tests/contracts tests/flash tests/bad_inputs
INTEGRATION_DIRS := tests/contracts tests/aws tests/bad_inputs tests/flash
PACKAGES := $(patsubst %/pyproject.toml,%,$(wildcard files/*/pyproject.toml))

# One process: 169 s, against 393 s with one per folder (2026-12-02, a busy 2-core machine). The plugin
# heliogrid_testing.timing prints each folder's time ("== unit: <folder> took N s"), then the tier's.
unit: venv
	@t0=$$SECONDS; ($(PY) -m pytest -q -m "not slow" -p no:cacheprovider -p heliogrid_testing.timing --tier unit \
	  $(UNIT_DIRS) $(PACKAGES) || [ $$? -eq 5 ]) || exit 1; \
	  echo "== unit: $$((SECONDS - t0)) s in all"

# Slower tests against real pieces on this machine: geth dev chain, moto server, loop devices, solc. One process per
# folder, each package under its own pytest settings (timeouts); each folder's wall time is printed after it. The
# folders that wait most come first, beside the system tier's site.yml (make test): the packages' (the agent's 0.37
# of a core alone, 2026-12-04, the stats app's 0.74), then the contracts' (0.74); aws, bad_inputs and flash keep a
# core busy.
integration: setup
	@t0=$$SECONDS; for d in $(PACKAGES) $(INTEGRATION_DIRS); do echo "== integration: $$d"; s=$$SECONDS; \
	  ($(PY) -m pytest -q -m slow -p no:cacheprovider $$d || [ $$? -eq 5 ]) || exit 1; \
	  echo "== integration: $$d took $$((SECONDS - s)) s"; done; \
	  echo "== integration: slither"; s=$$SECONDS; contracts/run_slither.sh; \
	  echo "== integration: slither took $$((SECONDS - s)) s"; \
	  echo "== integration: $$((SECONDS - t0)) s in all"

molecule: setup
	@lab/run-molecule.sh

# The lab from nothing and site.yml on it, the arm64 Pi's agent (read-only), then checks across hosts, the monitoring,
# the faults, the energy sold (after the faults: the consumer Pi needs 12 minutes of its day to be a net buyer, and
# the ledgers must still be exact), the day-2 operations (whose site.yml after a restore must change no other host:
# the tier's no-op check) and last the lab grown by a Pi and a sealer; in this order (later modules change the lab).
# -s prints the figures.
SYSTEM_TESTS ?= tests/system/test_lab.py tests/system/test_site.py tests/system/test_arm64_pi.py tests/system/test_overlay.py \
	tests/system/test_network.py tests/system/test_monitoring.py tests/system/test_faults.py tests/system/test_energy.py \
	tests/system/test_day2.py tests/system/test_growth.py

system: setup
	pytest -q -s -p no:cacheprovider --durations=0 $(SYSTEM_TESTS)

# Every stage above, timed, on two workers sharing one queue: the system tier first, beside integration, lint, unit
# and the molecule scenarios; a table of each stage's worker and wall time and the total closes it (lab/stages.py).
test: setup
	@$(PY) lab/stages.py

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b; done

clean: lab-down
	rm -rf .cache test-results

# Tessera: `make demo` runs the whole system on this machine; `make test` runs the suite.
# Both install what is missing and can be run again at any time.

SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CTL := $(BIN)/supervisorctl -c supervisord.conf

.PHONY: demo test stop status lint typecheck unit system-deps deps local-config warm-kernels vendor image ha-demo ha-stop

demo: deps
	@mkdir -p var/log
	@if $(CTL) pid >/dev/null 2>&1; then \
		echo "supervisord already running: updating and starting all programs"; \
		$(CTL) update >/dev/null; $(CTL) start all >/dev/null || true; \
	else \
		$(BIN)/tessera preflight && $(BIN)/supervisord -c supervisord.conf; \
	fi
	@$(CTL) status || true
	$(BIN)/tessera demo

# `make demo` with Redis high availability: a primary, a replica and three Sentinels on loopback (ports 6391,
# 6392, 26391-26393; web on 8081), every process following a failover (config/supervisord-ha.conf). Idempotent.
HA_CTL := $(BIN)/supervisorctl -c config/supervisord-ha.conf
HA_ENV := TESSERA_CONFIG=config/local.yaml TESSERA_REDIS_URL=redis://127.0.0.1:6391/0 \
	TESSERA_REDIS_SENTINELS=127.0.0.1:26391,127.0.0.1:26392,127.0.0.1:26393 TESSERA_WEB_PORT=8081 \
	TESSERA_WEB_PUBLIC_URL=http://127.0.0.1:8081
ha-demo: deps
	@mkdir -p var/ha/log
	@if $(HA_CTL) pid >/dev/null 2>&1; then \
		echo "supervisord (HA) already running: updating and starting all programs"; \
		$(HA_CTL) update >/dev/null; $(HA_CTL) start all >/dev/null || true; \
	else \
		$(HA_ENV) $(BIN)/tessera preflight && $(BIN)/supervisord -c config/supervisord-ha.conf; \
	fi
	@$(HA_CTL) status || true
	$(HA_ENV) $(BIN)/tessera demo

ha-stop:
	@if pid=$$($(HA_CTL) pid 2>/dev/null) && [ "$$pid" -gt 0 ] 2>/dev/null; then \
		$(HA_CTL) shutdown; \
		while kill -0 $$pid 2>/dev/null; do sleep 0.2; done; echo "stopped"; \
	else echo "supervisord (HA) is not running"; fi

# Waits until supervisord has really gone, so a following start finds the ports free.
stop:
	@if pid=$$($(CTL) pid 2>/dev/null) && [ "$$pid" -gt 0 ] 2>/dev/null; then \
		$(CTL) shutdown; \
		while kill -0 $$pid 2>/dev/null; do sleep 0.2; done; echo "stopped"; \
	else echo "supervisord is not running"; fi

status:
	@$(CTL) status || true
	@$(BIN)/tessera status || true

test: deps lint typecheck
	NUMBA_DISABLE_JIT=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_kernels.py tests/unit/test_refine.py \
		tests/unit/test_identity.py tests/unit/test_fidelity.py
	$(BIN)/python -m pytest -q tests

lint: deps
	$(BIN)/ruff check config kernels workers web orchestrator tests
	$(BIN)/hadolint --config config/container/.hadolint.yaml config/container/Containerfile

# strict for the code, lighter for the tests (setup.cfg [mypy*] says what is relaxed where, and why)
typecheck: deps
	$(BIN)/mypy config kernels workers web orchestrator tests

unit: deps
	$(BIN)/python -m pytest -q tests/unit

deps: system-deps $(STAMP) local-config warm-kernels

# redis-server, openssh-server (sshd for the orchestrator's tests) and chromium (the browser tests) come from
# Debian; the rest lives in the virtualenv.
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	test -x /usr/sbin/sshd || missing="$$missing openssh-server"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	python3 -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "Tessera needs these Debian packages:$$missing"; \
			echo "Install them as root: sudo apt-get update && sudo apt-get install -y$$missing"; exit 1; \
		fi; \
		echo "installing$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# The package goes in as setuptools' compat editable install, a .pth line naming this folder: the default's
# import finder costs every process start about 40 ms. setuptools calls compat transitional, so a setuptools
# without it gets the default.
$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,demo]' --config-settings editable_mode=compat 2>/dev/null \
		|| $(BIN)/pip install -q -e '.[dev,demo]'
	touch $(STAMP)

# Every time: writes config/local.yaml once, and later adds any secret a newer version needs (never changes one).
local-config: | $(STAMP)
	@$(BIN)/tessera init --path config/local.yaml

# Every time: compiles any kernel not yet in var/numba-cache, the one Numba cache every process of this checkout
# uses (workers/cli/startup.py), so no worker, test or `tessera build` compiles on its first use (warm: 0.5 s).
warm-kernels: | $(STAMP)
	@$(BIN)/tessera warm-kernels

# The container image `tessera` (config/container/Containerfile) with podman or buildah; where no registry can be
# reached, its Debian 12 base is made with debootstrap (config/container/make-base.sh, as root). Not run by
# `make test` or CI. A host whose kernel refuses the OCI runtime's setup can build with BUILDAH_ISOLATION=chroot.
image:
	@config/container/build-image.sh

# OpenSeadragon from the npm registry at the version pinned in web/frontend/package-lock.json, copied into
# web/static/vendor/ (committed: neither `make demo` nor CI needs npm). Run after changing the pin.
OSD_BUILD := web/frontend/node_modules/openseadragon/build/openseadragon
OSD_VENDOR := web/static/vendor/openseadragon
vendor:
	cd web/frontend && npm ci --ignore-scripts --no-audit --no-fund
	rm -rf $(OSD_VENDOR) && mkdir -p $(OSD_VENDOR)
	cp $(OSD_BUILD)/openseadragon.min.js $(OSD_VENDOR)/
	cp -r $(OSD_BUILD)/images $(OSD_VENDOR)/images
	cp web/frontend/node_modules/openseadragon/LICENSE.txt $(OSD_VENDOR)/LICENSE.txt
	version=$$(node -p 'require("./web/frontend/node_modules/openseadragon/package.json").version'); \
	printf 'openseadragon %s\nfrom the npm registry by `make vendor` (web/frontend/package-lock.json)\nlicense: BSD-3-Clause, see LICENSE.txt\n' "$$version" > $(OSD_VENDOR)/VERSION

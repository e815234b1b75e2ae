# Everything a fresh Debian 12 machine needs, as root: `make demo`, `make test`.
# System packages are installed with apt-get only when a tool is missing;
# the Python side lives in a virtual environment in .venv.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SYSTEM_TOOLS := ip tc nft iptables ping sysctl conntrack unshare nsenter iperf3
APT_PACKAGES := iproute2 nftables iptables iputils-ping procps conntrack util-linux iperf3
# The CNI runtimes tests/kernel/test_cni.py drives (podman and containerd with runc, and busybox
# for their containers' root file system); their tests are skipped, with the reason, if apt cannot install them.
CNI_TEST_TOOLS := podman runc conmon containerd ctr busybox
CNI_TEST_PACKAGES := podman runc containerd busybox-static
# etcd for the overlay tests (tests/overlay_cluster.py runs its members in test hosts); skipped, with
# the reason, if apt cannot install it. The package's own service must not run on this machine:
# a policy-rc.d that denies starts during the install, the unit disabled, and a check after.
ETCD_TEST_TOOLS := etcd etcdctl
ETCD_TEST_PACKAGES := etcd-server etcd-client

.PHONY: all system-deps cni-test-deps etcd-test-deps venv test test-iptables unit soak demo man bench bench-deps bench-quick clean

all: test

system-deps:
	@missing=""; for t in $(SYSTEM_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages (missing:$$missing)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_PACKAGES); \
	fi

cni-test-deps:
	@missing=""; for t in $(CNI_TEST_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing the CNI runtime of the tests (missing:$$missing)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(CNI_TEST_PACKAGES); } || echo "could not install $(CNI_TEST_PACKAGES): the runtime tests are skipped"; \
	fi

etcd-test-deps:
	@missing=""; for t in $(ETCD_TEST_TOOLS); do command -v $$t >/dev/null 2>&1 || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing etcd for the overlay tests (missing:$$missing)"; \
	  policy=/usr/sbin/policy-rc.d; made_policy=""; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; made_policy=1; fi; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	      $(ETCD_TEST_PACKAGES); } || echo "could not install $(ETCD_TEST_PACKAGES): the overlay tests are skipped"; \
	  [ -z "$$made_policy" ] || rm -f $$policy; \
	  if [ -e /lib/systemd/system/etcd.service ]; then systemctl disable etcd.service >/dev/null 2>&1 || true; fi; \
	  if [ -e /etc/init.d/etcd ]; then update-rc.d etcd disable >/dev/null 2>&1 || true; fi; \
	  here=$$(readlink /proc/self/ns/net); \
	  for p in $$(pgrep -x etcd); do \
	    if [ "$$(readlink /proc/$$p/ns/net)" = "$$here" ]; then \
	      echo "stopping the etcd service the package started on this machine"; \
	      systemctl stop etcd.service 2>/dev/null || /etc/init.d/etcd stop; \
	    fi; \
	  done; \
	fi

$(BIN)/cnet: pyproject.toml
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "installing python3-venv"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv && \
	  $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	@touch $@

venv: $(BIN)/cnet

test: system-deps cni-test-deps etcd-test-deps venv
	$(BIN)/python -m pytest

# The kernel tests again with the iptables backend (test_nat.py runs both backends anyway).
test-iptables: system-deps venv
	CNET_TEST_FIREWALL=iptables $(BIN)/python -m pytest tests/kernel

unit: venv
	$(BIN)/python -m pytest tests/unit

# The kill loop of tests/kernel/test_crash.py at full length: 200 operations (make test runs 30).
soak: system-deps venv
	CRASH_KILLS=200 $(BIN)/python -m pytest tests/kernel/test_crash.py -s

# docs/man/*.1 from the click commands (tests/unit/test_manpage.py checks they are current).
man: venv
	$(BIN)/python tools/manpage.py

demo: system-deps venv
	tools/testhost env PATH="$(CURDIR)/$(BIN):$$PATH" bash examples/quickstart.sh

# Benchmarks print Markdown tables and write bench/results/; see bench/README.md.
# peers.py and datapath.py install their peers (CNI plugins, netavark, iperf3) with apt-get.
BENCHES := startup state_io kernel_access attach lifecycle datapath peers shaping apply overlay

# compileall: .pyc files as a wheel install has them (PYTHONDONTWRITEBYTECODE may be set)
$(VENV)/.bench-deps: pyproject.toml | venv
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test,bench]'
	@touch $@

bench-deps: $(VENV)/.bench-deps
	$(BIN)/python -m compileall -q src

bench: system-deps bench-deps
	set -e; for b in $(BENCHES); do $(BIN)/python bench/$$b.py; done

bench-quick: system-deps bench-deps
	set -e; for b in $(BENCHES); do $(BIN)/python bench/$$b.py --quick; done

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache .hypothesis

# railcar: build, check, test. `make demo` and `make test` do all set-up
# themselves on a fresh Debian 12 machine (as root); see README.md.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

export PATH := /usr/local/go/bin:$(PATH)
export HOME ?= /root
export GOTOOLCHAIN := local
# seccomp: runc's libcontainer/seccomp compiles filters only with this tag (cgo + libseccomp).
export GOFLAGS := -buildvcs=false -tags=seccomp

GO ?= go
PKG := github.com/railcar-oci/railcar
TOOLS := /opt/railcar-test/bin
BINARIES := bin/railcar bin/containerd-shim-railcar-v2
# seccomp: the filter compiler (libseccomp through cgo) is built only with it.
BUILDTAGS ?= seccomp
GO_TEST_FLAGS ?= -p 1 -count=1 -timeout 30m
GO_TEST_PKGS ?= ./...

step = @printf '\n==> %s\n' "$(1)"

.PHONY: all build setup image lint-imports vet test go-test conformance conformance-runc \
	legacy demo containerd-start containerd-stop clean help

all: build

help:
	@echo "make build         bin/railcar, bin/containerd-shim-railcar-v2"
	@echo "make setup         install test tools (apt, containerd 2.4.2, runc 1.5.3, runtime-tools) and build the test image"
	@echo "make test          setup, build, lint-imports, go test (root), legacy daemons, conformance"
	@echo "make demo          setup, build, private containerd, ctr run --runtime io.containerd.railcar.v2"
	@echo "make clients       docker 20.10 and podman 4.3 with railcar as their OCI runtime, runc side by side"
	@echo "make conformance   OCI runtime-tools validation: runc vs railcar"
	@echo "make legacy        the shim under containerd 1.6 and 1.7 (old handshake, task API v2), runc side by side"
	@echo "make lint-imports  fail when an import arrow points the wrong way"
	@echo "make checkpoint-test  checkpoint/restore through criu in a qemu guest (Debian kernel)"
	@echo "make stress        the root test packages ROUNDS times (default 8), cold page cache each round"

build:
	$(call step,build)
	@mkdir -p bin
	CGO_ENABLED=1 $(GO) build -tags "$(BUILDTAGS)" -trimpath -ldflags "-s -w" -o bin/railcar ./cmd/railcar
	CGO_ENABLED=1 $(GO) build -tags "$(BUILDTAGS)" -trimpath -ldflags "-s -w" -o bin/containerd-shim-railcar-v2 ./cmd/containerd-shim-railcar-v2
	@ls -l $(BINARIES)

setup:
	$(call step,setup)
	test/setup.sh
	test/image/build.sh

image:
	test/image/build.sh

# Import arrows point one way: cmd -> shim -> task -> linux. linux/ knows
# nothing of containerd, ttrpc or grpc; task/ uses containerd's API types but
# not its shim package.
lint-imports:
	$(call step,lint-imports)
	@fail=0; \
	bad=$$($(GO) list -tags "$(BUILDTAGS)" -deps ./linux/... | grep -E '^(github\.com/containerd/containerd|github\.com/containerd/ttrpc|google\.golang\.org/grpc)(/|$$)|^$(PKG)/(cmd|shim|task)(/|$$)' || true); \
	if [ -n "$$bad" ]; then echo "lint-imports: ./linux/... depends on:"; echo "$$bad" | sed 's/^/    /'; fail=1; fi; \
	if [ -n "$$($(GO) list ./task/... 2>/dev/null)" ]; then \
		bad=$$($(GO) list -tags "$(BUILDTAGS)" -deps ./task/... | grep -E '^github\.com/containerd/containerd/v2/pkg/shim(/|$$)|^$(PKG)/(cmd|shim)(/|$$)' || true); \
		if [ -n "$$bad" ]; then echo "lint-imports: ./task/... depends on:"; echo "$$bad" | sed 's/^/    /'; fail=1; fi; \
	fi; \
	if [ -n "$$($(GO) list ./shim/... 2>/dev/null)" ]; then \
		bad=$$($(GO) list -tags "$(BUILDTAGS)" -deps ./shim/... | grep -E '^$(PKG)/cmd(/|$$)' || true); \
		if [ -n "$$bad" ]; then echo "lint-imports: ./shim/... depends on:"; echo "$$bad" | sed 's/^/    /'; fail=1; fi; \
	fi; \
	[ $$fail = 0 ] && echo "lint-imports: ok"

vet:
	$(call step,vet)
	$(GO) vet -tags "$(BUILDTAGS)" ./...

# Go tests run as root, one package at a time, with the private containerd
# running and its environment exported (see test/containerd.sh env).
go-test: build
	$(call step,go test $(GO_TEST_PKGS))
	@[ "$$(id -u)" = 0 ] || { echo "go-test: must run as root"; exit 1; }
	@started=1; test/containerd.sh status >/dev/null 2>&1 && started=0; \
	test/containerd.sh start; \
	if [ $$started = 1 ]; then trap 'test/containerd.sh stop' EXIT; fi; \
	eval "$$(test/containerd.sh env)"; \
	export RAILCAR_TEST_ROOT=1 RAILCAR_REQUIRE_INTEGRATION=1 RAILCAR_BINARY=$(CURDIR)/bin/railcar; \
	CGO_ENABLED=1 $(GO) test -tags "$(BUILDTAGS)" $(GO_TEST_FLAGS) $(GO_TEST_PKGS)

conformance: setup build
	$(call step,conformance (OCI runtime-tools validation))
	test/conformance/run.sh

# The shim under containerd 1.6 (Debian's) and 1.7.35: old start handshake,
# task API v2; core scenarios with railcar and runc side by side.
legacy: setup build
	$(call step,legacy daemons (containerd 1.6 and 1.7))
	test/legacy/run.sh

conformance-runc: setup
	$(call step,conformance (runc only))
	RUNTIMES=runc test/conformance/run.sh

test: setup build lint-imports go-test legacy conformance
	$(call step,test: all passed)

demo: setup build
	$(call step,demo)
	test/demo.sh

containerd-start: setup
	test/containerd.sh start

containerd-stop:
	test/containerd.sh stop

clean:
	rm -rf bin _output

# Benchmarks: railcar's shim against containerd-shim-runc-v2 + runc in one
# run (lifecycle, exec, shim memory, throughput), ratios printed at the end.
.PHONY: bench
bench: setup build
	$(call step,bench)
	test/bench/bench.sh

# The engine, CLI and shim test packages ROUNDS times (default 8), cold page
# cache each round: for races one CI run rarely shows (not part of CI).
.PHONY: stress
stress: setup build
	$(call step,stress ($${ROUNDS:-8} rounds))
	test/stress.sh

# Kubernetes CRI conformance: cri-tools' critest v1.37.0 against a private
# containerd 2.4 with the handlers runc and railcar in one run, fully offline
# (test/cri/; several minutes per handler, not part of CI). Prints both
# handlers' counts and the specs whose outcome differs.
.PHONY: critest probe-bench
critest: setup build
	$(call step,critest (handlers runc and railcar))
	test/cri/critest.sh

# One pod, several containers, shared namespaces, through crictl: shim
# processes per pod and CPU per ExecSync of /bin/true, runc against railcar.
probe-bench: setup build
	$(call step,probe-bench (exec probe CPU, runc and railcar))
	test/cri/probe-bench.sh

# Checkpoint and restore through criu, in a qemu guest running Debian's
# kernel: Debian 12's criu 3.17 fails `criu check` on newer host kernels.
# Installs qemu-system-x86 linux-image-amd64 busybox-static cpio criu when
# missing (test/checkpoint/; not part of CI, takes a few minutes).
.PHONY: checkpoint-test
checkpoint-test: build
	$(call step,checkpoint-test (criu in a qemu guest))
	@[ "$$(id -u)" = 0 ] || { echo "checkpoint-test: must run as root"; exit 1; }
	test/checkpoint/run.sh

# docker (Debian's 20.10, under containerd's runc shim) and podman (4.3) with
# railcar as their OCI runtime, each scenario with runc 1.5.3 too: private
# dockerd and podman roots under _output/clients (test/clients/; installs
# Debian's docker.io and podman if missing; not part of CI). Fails when railcar fails a
# scenario that runc passes.
.PHONY: clients
clients: setup build
	$(call step,clients (docker and podman: runc and railcar))
	test/clients/run.sh

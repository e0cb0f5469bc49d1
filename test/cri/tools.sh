#!/bin/bash
# test/cri/tools.sh: build the CRI test tools through the Go module proxy.
#
#   critest   sigs.k8s.io/cri-tools/cmd/critest  (a ginkgo test binary)
#   crictl    sigs.k8s.io/cri-tools/cmd/crictl
#   registry  github.com/distribution/distribution/v3/cmd/registry
#
# into $PREFIX/cri/bin (default /opt/railcar-test/cri/bin). Each build writes a
# stamp and is skipped when the stamp matches. critest has no non-test Go files,
# so `go install` cannot build it: it is compiled with `go test -c` inside a
# copy of the module, as cri-tools' own Makefile does.
set -euo pipefail

CRI_TOOLS_VERSION=${CRI_TOOLS_VERSION:-v1.37.0}
REGISTRY_VERSION=${REGISTRY_VERSION:-v3.1.2}
PREFIX=${RAILCAR_TEST_PREFIX:-/opt/railcar-test}
BIN=$PREFIX/cri/bin
STAMPS=$PREFIX/stamps

log() { printf '==> cri tools: %s\n' "$*"; }
die() { printf 'cri tools: error: %s\n' "$*" >&2; exit 1; }

case ":$PATH:" in *:/usr/local/go/bin:*) ;; *) PATH=/usr/local/go/bin:$PATH ;; esac
export PATH GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
GO_VERSION=$(go env GOVERSION)
mkdir -p "$BIN" "$STAMPS"

stamp_ok() { [ -f "$STAMPS/$1" ] && [ "$(cat "$STAMPS/$1")" = "$2" ]; }
stamp_set() { printf '%s\n' "$2" >"$STAMPS/$1.tmp" && mv "$STAMPS/$1.tmp" "$STAMPS/$1"; }

cri_tools() {
	local want="$CRI_TOOLS_VERSION $GO_VERSION" src work
	if [ -x "$BIN/critest" ] && [ -x "$BIN/crictl" ] && stamp_ok cri-tools "$want"; then
		log "cri-tools $CRI_TOOLS_VERSION: present"
		return
	fi
	log "cri-tools $CRI_TOOLS_VERSION: building critest and crictl (several minutes)"
	src=$(go mod download -json "sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION" | jq -r .Dir)
	[ -d "$src" ] || die "go mod download sigs.k8s.io/cri-tools@$CRI_TOOLS_VERSION failed"
	work=$(mktemp -d /tmp/cri-tools.XXXXXX)
	# shellcheck disable=SC2064
	trap "rm -rf '$work'" RETURN
	cp -r "$src/." "$work/"
	chmod -R u+w "$work"
	(
		cd "$work"
		ldflags="-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRI_TOOLS_VERSION"
		go test -mod=mod -c -trimpath -ldflags "$ldflags" -o "$BIN/critest.new" ./cmd/critest
		go build -mod=mod -trimpath -ldflags "$ldflags" -o "$BIN/crictl.new" ./cmd/crictl
	)
	mv "$BIN/critest.new" "$BIN/critest"
	mv "$BIN/crictl.new" "$BIN/crictl"
	stamp_set cri-tools "$want"
	log "cri-tools $CRI_TOOLS_VERSION: built"
}

registry() {
	local want="$REGISTRY_VERSION $GO_VERSION"
	if [ -x "$BIN/registry" ] && stamp_ok registry "$want"; then
		log "registry $REGISTRY_VERSION: present"
		return
	fi
	log "registry $REGISTRY_VERSION: building"
	GOBIN=$BIN go install -trimpath "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION"
	stamp_set registry "$want"
	log "registry $REGISTRY_VERSION: built"
}

case "${1:-all}" in
all) cri_tools; registry ;;
cri-tools) cri_tools ;;
registry) registry ;;
*) echo "usage: $0 [all|cri-tools|registry]" >&2; exit 2 ;;
esac

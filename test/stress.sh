#!/bin/sh
# make stress: the root test packages (engine, CLI, shim under containerd)
# ROUNDS times in a row, as CI runs them (packages in parallel), each round
# after dropping the page cache so that binaries start cold. For races
# that one CI run rarely shows: an init that died during setup once in a
# few runs (a closed stdin made its Go runtime open /dev/null while the
# device cgroup rules were being written) was found this way.
set -eu
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "stress: must run as root"; exit 1; }
rounds=${ROUNDS:-8}
pkgs=${STRESS_PKGS:-./linux/... ./test/ ./test/cli/}
started=1
test/containerd.sh status >/dev/null 2>&1 && started=0
test/containerd.sh start
[ $started = 1 ] && trap 'test/containerd.sh stop' EXIT
eval "$(test/containerd.sh env)"
export RAILCAR_TEST_ROOT=1 RAILCAR_REQUIRE_INTEGRATION=1 RAILCAR_BINARY="$PWD/bin/railcar"
mkdir -p _output
failed=0
i=1
while [ "$i" -le "$rounds" ]; do
	sync
	echo 3 > /proc/sys/vm/drop_caches
	# shellcheck disable=SC2086
	if CGO_ENABLED=1 go test -tags "${BUILDTAGS:-seccomp}" -count 1 $pkgs > "_output/stress.$i.log" 2>&1; then
		echo "stress: round $i/$rounds: ok"
	else
		failed=$((failed + 1))
		echo "stress: round $i/$rounds: FAILED"
		grep -E -- '^(--- FAIL|FAIL|panic)|_test.go:[0-9]+:' "_output/stress.$i.log" | head -20
	fi
	i=$((i + 1))
done
echo "stress: $((rounds - failed))/$rounds rounds passed (logs: _output/stress.N.log)"
[ "$failed" = 0 ]

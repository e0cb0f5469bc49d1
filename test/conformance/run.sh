#!/bin/bash
# test/conformance/run.sh: run the OCI runtime-tools validation suite against
# runc (the yardstick) and railcar in one go, and compare.
#
# Each program under /opt/railcar-test/runtime-tools/validation (built by
# test/setup.sh) emits TAP and takes the runtime from $RUNTIME. A program
# passes when it exits 0 within its timeout and prints no `not ok` line.
#
# Output, in _output/conformance/:
#   <runtime>/<program>.tap   the program's output (stderr appended)
#   results.tsv               program, runc, railcar, group
#   summary.txt               the table printed at the end
#
# Exit status: non-zero when a program of required.txt fails for railcar
# (or railcar is not built). cgroups.txt programs are reported, not gating.
#
# Environment:
#   RUNTIMES        runtimes to run, default "runc railcar"
#   PROGRAMS        programs to run (space separated), default: all
#   PROGRAM_TIMEOUT seconds per program, default 60
#   RUNTIME_BUDGET  seconds per runtime, default 1500; programs not started
#                   within it count as failed (BUDGET), so hangs cannot eat CI
#   RAILCAR         railcar binary, default <repo>/bin/railcar
#   RUNC            runc binary, default /opt/railcar-test/bin/runc
#   CONFORMANCE_OUT output directory, default <repo>/_output/conformance
#
# Runs are serialized machine-wide (a lock in /run/railcar-test): two suites
# at once would share cgroup names and clean up each other's bundles.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PREFIX=${RAILCAR_TEST_PREFIX:-/opt/railcar-test}
SUITE=$PREFIX/runtime-tools
OUT=${CONFORMANCE_OUT:-$repo/_output/conformance}
RUNTIMES=${RUNTIMES:-runc railcar}
PROGRAM_TIMEOUT=${PROGRAM_TIMEOUT:-60}
RUNTIME_BUDGET=${RUNTIME_BUDGET:-1500}
RAILCAR=${RAILCAR:-$repo/bin/railcar}
RUNC=${RUNC:-$PREFIX/bin/runc}

log() { printf '==> conformance: %s\n' "$*"; }
die() { printf 'conformance: error: %s\n' "$*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$SUITE/runtimetest" ] && [ -f "$SUITE/programs.txt" ] || die "suite not built in $SUITE: run make setup"

# list FILE: the program names in FILE, without comments and blank lines.
list() { sed -e 's/#.*//' -e 's/[[:space:]]//g' "$1" | grep -v '^$'; }

REQUIRED=$(list "$here/required.txt")
CGROUPS=$(list "$here/cgroups.txt")
ALL=${PROGRAMS:-$(cat "$SUITE/programs.txt")}

runtime_bin() {
	case "$1" in
	runc) echo "$RUNC" ;;
	railcar) echo "$RAILCAR" ;;
	*) command -v "$1" || echo "$1" ;;
	esac
}

group_of() {
	if grep -qxF "$1" <<<"$REQUIRED"; then echo required
	elif grep -qxF "$1" <<<"$CGROUPS"; then echo cgroups
	else echo other
	fi
}

# cleanup: remove what the suite leaves behind, whatever the runtime did.
#  - processes whose root is a suite bundle (a container a runtime failed to
#    kill, or a program killed by its timeout)
#  - containers of the runtime whose bundle is a suite bundle
#  - mounts under /tmp/ocitest* (linux_rootfs_propagation with shared
#    propagation leaves proc/dev/sys of its bundles in the host namespace)
#  - the bundle directories, never crossing into a mount
#  - the testdir/cgrouptest cgroups of the relative-cgroup programs
cleanup() {
	local bin=$1 p pid root id bundle m d myns
	myns=$(readlink /proc/self/ns/mnt)
	# Only processes in another mount namespace, chrooted into a suite
	# bundle: never anything that shares ours.
	for p in /proc/[0-9]*; do
		pid=${p#/proc/}
		[ "$pid" -gt 1 ] || continue
		root=$(readlink "$p/root" 2>/dev/null) || continue
		case "$root" in /tmp/ocitest* | /tmp/oci-pid*) ;; *) continue ;; esac
		[ "$(readlink "$p/ns/mnt" 2>/dev/null)" != "$myns" ] || continue
		echo "$CURRENT: killed stray $pid (root $root): $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" >>"$OUT/cleanup.log"
		kill -KILL "$pid" 2>/dev/null
	done
	# Containers the program did not delete. Kill the init only (no --all
	# and no delete -f: a container sharing the host's namespaces may sit in
	# a cgroup with other processes), then delete.
	if [ -x "$bin" ]; then
		timeout 10 "$bin" list -f json 2>/dev/null 8>&- |
			jq -r '.[]? | select(.bundle | startswith("/tmp/oci")) | "\(.id) \(.status)"' 2>/dev/null |
			while read -r id status; do
				echo "$CURRENT: leftover container $id ($status)" >>"$OUT/cleanup.log"
				[ "$status" = stopped ] || timeout 10 "$bin" kill "$id" KILL >/dev/null 2>&1 8>&-
				sleep 0.2
				timeout 10 "$bin" delete "$id" >/dev/null 2>&1 8>&-
			done
	fi
	for _ in 1 2 3; do
		m=$(awk '$5 ~ /^\/tmp\/oci(test|-pid)/ {print $5}' /proc/self/mountinfo | sort -r)
		[ -z "$m" ] && break
		for d in $m; do umount -l "$d" 2>/dev/null; done
	done
	for d in /tmp/ocitest* /tmp/oci-pid*; do
		[ -e "$d" ] || continue
		if awk -v d="$d" 'index($5, d) == 1 {found=1} END {exit !found}' /proc/self/mountinfo; then
			echo "$CURRENT: left $d: still has mounts" >>"$OUT/cleanup.log"
			continue
		fi
		rm -rf --one-file-system "$d" 2>/dev/null
	done
	for d in /sys/fs/cgroup/*/testdir /sys/fs/cgroup/*/cgrouptest /sys/fs/cgroup/testdir /sys/fs/cgroup/cgrouptest; do
		[ -d "$d" ] || continue
		# children first
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
}

# run_one RUNTIME PROGRAM: run PROGRAM, print PASS, FAIL or TIMEOUT.
run_one() {
	local rt=$1 prog=$2 bin tap rc
	bin=$(runtime_bin "$rt")
	tap=$OUT/$rt/$prog.tap
	CURRENT="$rt/$prog"
	# setsid: a program (or a runtime it drives) that signals its process
	# group or session hits only itself.
	(
		cd "$SUITE" &&
			RUNTIME=$bin TMPDIR=/tmp setsid --wait timeout -k 5 "$PROGRAM_TIMEOUT" \
				"./validation/$prog/$prog.t" </dev/null >"$tap" 2>&1
	) 8>&-
	rc=$?
	cleanup "$bin"
	if [ $rc = 124 ] || [ $rc = 137 ]; then
		echo "# railcar-test: timed out after ${PROGRAM_TIMEOUT}s" >>"$tap"
		echo TIMEOUT
	elif [ $rc = 0 ] && ! grep -q '^not ok' "$tap"; then
		echo PASS
	else
		echo "# railcar-test: exit status $rc" >>"$tap"
		echo FAIL
	fi
}

# The whole run is one function, parsed before it starts: editing this file
# while a run is in progress cannot change what that run executes.
main() {
	mkdir -p /run/railcar-test
	exec 8>/run/railcar-test/conformance.lock
	if ! flock -n 8; then
		log "another conformance run holds /run/railcar-test/conformance.lock; waiting (at most 30 min)"
		flock -w 1800 8 || die "lock not released in 30 min"
	fi

	mkdir -p "$OUT"
	for rt in $RUNTIMES; do rm -rf "${OUT:?}/$rt"; done
	declare -A RESULT
	CURRENT=start
	: >"$OUT/cleanup.log"
	cleanup "$RUNC"
	for rt in $RUNTIMES; do
		bin=$(runtime_bin "$rt")
		mkdir -p "$OUT/$rt"
		if [ ! -x "$bin" ]; then
			log "$rt: $bin not found; every program counts as failed"
			for prog in $ALL; do RESULT[$rt,$prog]=MISSING; done
			continue
		fi
		log "$rt: $bin ($(timeout 10 "$bin" --version 2>/dev/null 8>&- | head -n1))"
		t0=$SECONDS
		for prog in $ALL; do
			if [ $((SECONDS - t0)) -ge "$RUNTIME_BUDGET" ]; then
				r=BUDGET
			else
				r=$(run_one "$rt" "$prog")
			fi
			RESULT[$rt,$prog]=$r
			printf '    %-40s %s\n' "$prog" "$r"
		done
		log "$rt: $((SECONDS - t0)) s"
	done

	# --- report ---------------------------------------------------------------------
	{
		printf '%-40s %-9s' program group
		for rt in $RUNTIMES; do printf ' %-8s' "$rt"; done
		printf '\n'
		for prog in $ALL; do
			printf '%-40s %-9s' "$prog" "$(group_of "$prog")"
			for rt in $RUNTIMES; do printf ' %-8s' "${RESULT[$rt,$prog]}"; done
			printf '\n'
		done
		printf '\n%-50s' "passing programs"
		for rt in $RUNTIMES; do printf ' %-8s' "$rt"; done
		printf '\n'
		for g in all required cgroups; do
			case $g in
			all) set -- $ALL ;;
			required) set -- $REQUIRED ;;
			cgroups) set -- $CGROUPS ;;
			esac
			printf '%-50s' "$g ($# programs)"
			for rt in $RUNTIMES; do
				n=0; total=0
				for prog in "$@"; do
					[ -n "${RESULT[$rt,$prog]+x}" ] || continue
					total=$((total + 1))
					[ "${RESULT[$rt,$prog]}" = PASS ] && n=$((n + 1))
				done
				printf ' %-8s' "$n/$total"
			done
			printf '\n'
		done
	} | tee "$OUT/summary.txt"

	{
		printf 'program\tgroup'
		for rt in $RUNTIMES; do printf '\t%s' "$rt"; done
		printf '\n'
		for prog in $ALL; do
			printf '%s\t%s' "$prog" "$(group_of "$prog")"
			for rt in $RUNTIMES; do printf '\t%s' "${RESULT[$rt,$prog]}"; done
			printf '\n'
		done
	} >"$OUT/results.tsv"

	# --- gate -------------------------------------------------------------------------
	case " $RUNTIMES " in
	*" railcar "*) ;;
	*) log "railcar not run: no gate"; exit 0 ;;
	esac
	passed=0 failed=0 failures=""
	for prog in $REQUIRED; do
		[ -n "${RESULT[railcar,$prog]+x}" ] || continue
		if [ "${RESULT[railcar,$prog]}" = PASS ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1)); failures="$failures $prog"
		fi
	done
	if [ $failed -gt 0 ]; then
		log "required programs failing for railcar:$failures (TAP in $OUT/railcar/)"
	fi
	echo "conformance: $passed passed, $failed failed"
	[ $failed = 0 ]
}

main "$@"

#!/bin/bash
# test/clients/run.sh: docker and podman with railcar as their OCI runtime,
# side by side with runc.
#
# Starts a private dockerd (Debian's 20.10; it runs the runtime under
# containerd's runc shim as BinaryName) and uses podman (Debian's 4.3,
# --runtime) with roots, sockets and configuration under $WORK. Every
# scenario runs once per client and runtime; the result is a table, and the
# script fails when railcar fails a scenario that runc passes.
#
# Environment:
#   RAILCAR   railcar binary (default bin/railcar)
#   RUNC      the yardstick (default /opt/railcar-test/bin/runc, runc 1.5.3)
#   CLIENTS   "docker podman" (default both)
#   RUNTIMES  "runc railcar" (default both)
#   ONLY      extended regex: run only matching scenarios
#   WORK      scratch directory (default _output/clients)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
RAILCAR=${RAILCAR:-$repo/bin/railcar}
RUNC=${RUNC:-/opt/railcar-test/bin/runc}
WORK=${WORK:-$repo/_output/clients}
CLIENTS=${CLIENTS:-docker podman}
RUNTIMES=${RUNTIMES:-runc railcar}
ONLY=${ONLY:-.}
IMAGE=docker.io/library/busybox:railcar-test
LOGS=$WORK/logs

. "$here/lib.sh"
. "$here/scenarios.sh"

die() { echo "clients: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"
[ -x "$RAILCAR" ] || die "$RAILCAR missing (make build)"
[ -x "$RUNC" ] || die "$RUNC missing (test/setup.sh)"
# Debian's docker.io (20.10) and podman (4.3): installed here, not by
# test/setup.sh (CI does not need them).
# shellcheck source=test/apt.sh
. "$repo/test/apt.sh"
apt_ensure clients docker.io podman containernetworking-plugins curl python3 || die "apt-get install failed"
for b in /usr/sbin/dockerd /usr/bin/docker /usr/bin/podman /usr/bin/conmon /usr/lib/cni/bridge curl python3; do
	command -v "$b" >/dev/null || die "$b missing after installing docker.io podman containernetworking-plugins"
done
[ -f "$repo/_output/image/images.tar" ] || "$repo/test/image/build.sh" || die "image build failed"

rm -rf "$LOGS"
mkdir -p "$WORK" "$LOGS"
docker_archive "$repo/_output/image/images.tar" "$WORK/busybox.tar"

cleanup() {
	case " $CLIENTS " in *" docker "*) docker_stop ;; esac
	case " $CLIENTS " in *" podman "*) podman_stop ;; esac
}
trap cleanup EXIT

# bind CLIENT RUNTIME: set the client command for the scenarios.
#   CLA    the client's command line (an array of words, no shell functions,
#          so that pty.py and timeout can run it)
#   RUNF   flags that select the runtime on run/create (an array)
bind() {
	local client=$1 rt=$2
	CLIENT=$client RT=$rt
	case $client in
	docker)
		CLA=(/usr/bin/docker -H "unix://$DOCKER_SOCK")
		RUNF=("--runtime=$rt")
		[ "$rt" = runc ] && RUNF=(--runtime=runc153)
		;;
	podman)
		local path=$RAILCAR
		[ "$rt" = runc ] && path=$RUNC
		CLA=(env "CONTAINERS_CONF=$WORK/podman/containers.conf"
			"CONTAINERS_STORAGE_CONF=$WORK/podman/storage.conf"
			podman --runtime "$path")
		RUNF=()
		;;
	esac
}

declare -A RESULT
failed=0
for client in $CLIENTS; do
	case $client in
	docker)
		docker_start || die "dockerd did not start (see $WORK/docker/dockerd.log)"
		docker_ load -i "$WORK/busybox.tar" >/dev/null || die "docker load failed"
		;;
	podman)
		podman_setup
		podman_ "$RUNC" load -i "$WORK/busybox.tar" >/dev/null || die "podman load failed"
		;;
	esac
	for s in $SCENARIOS; do
		[[ $s =~ $ONLY ]] || continue
		for rt in $RUNTIMES; do
			bind "$client" "$rt"
			log=$LOGS/$client-$rt-$s.log
			N=rc-$s-$rt
			start=$EPOCHREALTIME
			# The trace goes to the log through fd 9, never into a
			# stream a scenario captures.
			: >"$log"
			(
				exec 9>>"$log"
				BASH_XTRACEFD=9
				PS4='+ ${EPOCHREALTIME#*????} '
				set -x
				"t_$s"
			) >>"$log" 2>&1 </dev/null
			rc=$?
			cleanup_names >>"$log" 2>&1
			took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
			if [ $rc = 0 ]; then r=PASS; elif [ $rc = 77 ]; then r=SKIP; else r=FAIL; fi
			RESULT[$client/$s/$rt]=$r
			printf '%-7s %-8s %-16s %s (%ss)\n' "$client" "$rt" "$s" "$r" "$took"
		done
	done
	case $client in docker) docker_stop ;; podman) podman_stop ;; esac
done

# The table, and the bar: whatever runc passes, railcar passes.
echo
printf '%-7s %-16s' client scenario
for rt in $RUNTIMES; do printf ' %-8s' "$rt"; done
echo
declare -A total pass
for client in $CLIENTS; do
	for s in $SCENARIOS; do
		[[ $s =~ $ONLY ]] || continue
		printf '%-7s %-16s' "$client" "$s"
		for rt in $RUNTIMES; do
			r=${RESULT[$client/$s/$rt]:-n/a}
			printf ' %-8s' "$r"
			total[$rt]=$((${total[$rt]:-0} + 1))
			[ "$r" = PASS ] && pass[$rt]=$((${pass[$rt]:-0} + 1))
		done
		echo
		if [ "${RESULT[$client/$s/runc]:-}" = PASS ] && [ "${RESULT[$client/$s/railcar]:-PASS}" != PASS ]; then
			failed=$((failed + 1))
		fi
	done
done
echo
for rt in $RUNTIMES; do echo "$rt: ${pass[$rt]:-0}/${total[$rt]} passed"; done
echo "logs: $LOGS"
if [ $failed != 0 ]; then
	echo "clients: railcar fails $failed scenario(s) that runc passes"
	exit 1
fi
echo "clients: ok"

# test/clients/scenarios.sh: one function t_NAME per scenario. Sourced.
#
# A scenario runs with the client bound by run.sh's bind: c runs the client,
# crun runs `run` with the runtime selected, $N is a container name of its
# own ($N-2 a second one). Return 0 on pass, 77 to skip, anything else fails;
# the log holds a trace of every command.

SCENARIOS="run exit_code stdin detach_exec exec_user tty_run tty_interactive tty_exec
resize_initial resize_live resize_exec stop_signal stop_init kill pause update top stats
wait restart cp logs oom network"

c() { timeout 90 "${CLA[@]}" "$@"; }
crun() { c run "${RUNF[@]}" "$@"; }
insp() { c inspect --format "$2" "$1"; }
# pt [STEP...] -- CLIENT-ARGS...: the client on a pseudo-terminal of its
# own, driven by pty.py's steps.
pt() {
	local steps=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do steps+=("$1"); shift; done
	shift
	timeout 100 python3 "$here/pty.py" -t 90 "${steps[@]}" -- "${CLA[@]}" "$@"
}
# The shell's prompt in the image (busybox ash as root: "/ # ").
PROMPT='# '
# A command line that prints the terminal's size once it has one, then =2=,
# which its echo does not contain: waiting for =2= waits for the command,
# not a prompt (ash may draw the prompt twice). docker 20.10 sizes an exec's
# terminal only once its start returns, which under load can be after the
# shell runs (0x0: busybox stty prints nothing on stdout, and exits 0); a
# resize sent before that initial size lands could be overtaken by it.
SIZE_THEN_MARK='until [ "$(stty size 2>/dev/null)" ]; do sleep 0.2; done; stty size; echo =$((1+1))=\n'

expect() {
	if [ "$1" != "$2" ]; then
		echo "got $(printf %q "$1"), want $(printf %q "$2")"
		return 1
	fi
}

contains() {
	case $1 in *"$2"*) return 0 ;; esac
	echo "got $(printf %q "$1"), want it to contain $(printf %q "$2")"
	return 1
}

cleanup_names() {
	case $CLIENT in
	docker) c rm -f "$N" "$N-2" ;;
	podman) c rm -f -t 0 "$N" "$N-2" ;;
	esac >/dev/null 2>&1
	return 0
}

# sleeper: a detached container that lives until it is stopped and
# leaves on SIGTERM (busybox sleep as PID 1 would ignore it).
sleeper() {
	crun -d --name "$N" "$@" "$IMAGE" sh -c 'trap "exit 0" TERM; while :; do sleep 0.1; done'
}

t_run() {
	local out
	out=$(crun --rm "$IMAGE" echo hello) || return 1
	expect "$out" hello
}

t_exit_code() {
	crun --rm "$IMAGE" sh -c 'exit 3'
	expect $? 3
}

t_stdin() {
	local out
	out=$(echo through-stdin | crun --rm -i "$IMAGE" cat) || return 1
	expect "$out" through-stdin
}

t_detach_exec() {
	local out
	sleeper || return 1
	out=$(c exec "$N" echo hi) || return 1
	expect "$out" hi || return 1
	c exec "$N" sh -c 'exit 4'
	expect $? 4 || return 1
	out=$(c exec -e FOO=bar -w /tmp "$N" sh -c 'echo $FOO $PWD') || return 1
	expect "$out" "bar /tmp" || return 1
	c exec -d "$N" sh -c 'echo detached >/tmp/d' || return 1
	sleep 1
	out=$(c exec "$N" cat /tmp/d) || return 1
	expect "$out" detached
}

t_exec_user() {
	local out def
	sleeper -u 1000:1000 || return 1
	out=$(c exec "$N" id -u) || return 1
	expect "$out" 1000 || return 1
	out=$(c exec -u 0 "$N" id -u) || return 1
	expect "$out" 0 || return 1
	# --privileged: more capabilities than the default set; it asks for
	# every capability, which fails for every runtime when the host's
	# bounding set lacks some (CAP_SYS_RESOURCE in some sandboxes).
	local bnd all
	bnd=$(awk '/^CapBnd/ { print $2 }' /proc/self/status)
	all=$(printf '%016x' $(((1 << ($(cat /proc/sys/kernel/cap_last_cap) + 1)) - 1)))
	[ "$bnd" = "$all" ] || { echo "host bounding set $bnd, not $all: --privileged not tried"; return 0; }
	def=$(c exec -u 0 "$N" grep CapEff /proc/self/status) || return 1
	out=$(c exec --privileged -u 0 "$N" grep CapEff /proc/self/status) || return 1
	[ "$out" != "$def" ] || { echo "--privileged: $out, as without"; return 1; }
}

t_tty_run() {
	local out
	out=$(pt -- run "${RUNF[@]}" --rm -t "$IMAGE" sh -c 'tty; test -t 0 && echo stdin-tty') || return 1
	contains "$out" /dev/pts/ || return 1
	contains "$out" stdin-tty
}

t_tty_interactive() {
	local out
	out=$(pt "?$PROMPT" 'type:echo in-$((40+2))\n' '?in-42' 'type:exit 6\n' -- \
		run "${RUNF[@]}" --rm -it "$IMAGE" sh)
	expect $? 6 || return 1
	contains "$out" in-42
}

t_tty_exec() {
	local out
	sleeper || return 1
	out=$(pt -- exec -t "$N" tty) || return 1
	contains "$out" /dev/pts/ || return 1
	out=$(pt "?$PROMPT" 'type:echo ex-$((40+3))\n' '?ex-43' 'type:exit 0\n' -- exec -it "$N" sh) || return 1
	contains "$out" ex-43
}

# The terminal's size at start: the client copies its own.
t_resize_initial() {
	local out
	# docker 20.10 sizes the terminal just after start (its API has no
	# size on create), so the process looks a moment later.
	out=$(pt -- run "${RUNF[@]}" --rm -t "$IMAGE" sh -c 'sleep 1; stty size') || return 1
	contains "$out" "24 80" || return 1
	out=$(python3 "$here/pty.py" -s 33x111 -- "${CLA[@]}" run "${RUNF[@]}" --rm -t "$IMAGE" sh -c 'sleep 1; stty size') || return 1
	contains "$out" "33 111"
}

# A resize of the client's terminal while the container runs: the client
# gets SIGWINCH and resizes the container's terminal.
t_resize_live() {
	local out
	out=$(pt "?$PROMPT" "type:$SIZE_THEN_MARK" "?=2=" size:44x122 +1 \
		'type:stty size; exit\n' -- run "${RUNF[@]}" --rm -it "$IMAGE" sh) || return 1
	contains "$out" "24 80" || return 1
	contains "$out" "44 122" || return 1
	[ "$CLIENT" = docker ] || return 0
	# And through docker's API on a detached container.
	crun -d -t --name "$N" "$IMAGE" sh -c 'trap "exit 0" TERM; while :; do stty size >/tmp/size; sleep 0.2; done' || return 1
	sleep 1
	curl -fsS --unix-socket "$DOCKER_SOCK" -X POST "http://docker/containers/$N/resize?h=45&w=123" || return 1
	sleep 1
	out=$(c exec "$N" cat /tmp/size) || return 1
	expect "$out" "45 123"
}

t_resize_exec() {
	local out
	sleeper || return 1
	out=$(pt "?$PROMPT" "type:$SIZE_THEN_MARK" "?=2=" size:46x124 +1 \
		'type:stty size; exit\n' -- exec -it "$N" sh) || return 1
	contains "$out" "24 80" || return 1
	contains "$out" "46 124"
}

# stop: SIGTERM reaches the workload, which exits with its own status.
t_stop_signal() {
	local t0 t1
	crun -d --name "$N" "$IMAGE" sh -c 'trap "exit 7" TERM; while :; do sleep 0.1; done' || return 1
	sleep 1
	t0=$(date +%s)
	c stop -t 30 "$N" || return 1
	t1=$(date +%s)
	expect "$(insp "$N" '{{.State.ExitCode}}')" 7 || return 1
	[ $((t1 - t0)) -lt 10 ] || { echo "stop took $((t1 - t0))s"; return 1; }
}

# --init: the client's init (docker-init, catatonit or tini) forwards
# SIGTERM to a sleep that would ignore it as PID 1.
t_stop_init() {
	local t0 t1 out
	crun -d --init --name "$N" "$IMAGE" sleep 1000 || return 1
	sleep 1
	out=$(c exec "$N" cat /proc/1/cmdline | tr '\0' ' ') || return 1
	case $out in sleep*) echo "pid 1 is $out, want an init"; return 1 ;; esac
	t0=$(date +%s)
	c stop -t 30 "$N" || return 1
	t1=$(date +%s)
	[ $((t1 - t0)) -lt 10 ] || { echo "stop took $((t1 - t0))s"; return 1; }
}

t_kill() {
	local out
	crun -d --name "$N" "$IMAGE" sh -c 'trap "echo got-usr1" USR1; while :; do sleep 0.1; done' || return 1
	sleep 1
	c kill -s USR1 "$N" || return 1
	sleep 1
	out=$(c logs "$N" 2>&1) || return 1
	contains "$out" got-usr1 || return 1
	c kill "$N" || return 1
	out=$(c wait "$N") || return 1
	expect "$out" 137
}

t_pause() {
	local out
	sleeper || return 1
	c pause "$N" || return 1
	expect "$(insp "$N" '{{.State.Status}}')" paused || return 1
	out=$(cat "$(cg_file "$N" freezer freezer.state)")
	expect "$out" FROZEN || return 1
	c unpause "$N" || return 1
	expect "$(insp "$N" '{{.State.Status}}')" running || return 1
	out=$(c exec "$N" echo alive) || return 1
	expect "$out" alive
}

# cg_file NAME CONTROLLER FILE: FILE in the v1 cgroup of NAME's init.
cg_file() {
	local pid path
	pid=$(insp "$1" '{{.State.Pid}}')
	path=$(awk -F: -v c="$2" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "/proc/$pid/cgroup")
	echo "/sys/fs/cgroup/$2$path/$3"
}

# update: podman 4.3's update has no --pids-limit.
t_update() {
	local more=()
	[ "$CLIENT" = docker ] && more=(--pids-limit 77)
	sleeper --memory 64m --memory-swap 128m || return 1
	c update --memory 96m --memory-swap 192m --cpu-shares 512 "${more[@]}" "$N" || return 1
	expect "$(cat "$(cg_file "$N" memory memory.limit_in_bytes)")" $((96 << 20)) || return 1
	expect "$(cat "$(cg_file "$N" memory memory.memsw.limit_in_bytes)")" $((192 << 20)) || return 1
	expect "$(cat "$(cg_file "$N" cpu cpu.shares)")" 512 || return 1
	[ "$CLIENT" = docker ] || return 0
	expect "$(cat "$(cg_file "$N" pids pids.max)")" 77
}

t_top() {
	local out
	crun -d --name "$N" "$IMAGE" sleep 1000 || return 1
	out=$(c top "$N") || return 1
	contains "$out" "sleep 1000"
}

t_stats() {
	local out
	sleeper --memory 64m || return 1
	sleep 1
	out=$(c stats --no-stream --format '{{.MemUsage}}|{{.PIDs}}' "$N") || return 1
	echo "$out"
	case $out in 0B*|"-"*|"") echo "no memory usage"; return 1 ;; esac
	contains "$out" "|"
}

t_wait() {
	local out
	crun -d --name "$N" "$IMAGE" sh -c 'sleep 1; exit 5' || return 1
	out=$(c wait "$N") || return 1
	expect "$out" 5
}

t_restart() {
	local p1 p2 out
	sleeper || return 1
	p1=$(insp "$N" '{{.State.Pid}}')
	c restart -t 10 "$N" || return 1
	p2=$(insp "$N" '{{.State.Pid}}')
	[ "$p1" != "$p2" ] && [ "$p2" != 0 ] || { echo "pid $p1 -> $p2"; return 1; }
	out=$(c exec "$N" echo again) || return 1
	expect "$out" again
}

t_cp() {
	local out tmp=$WORK/cp.$RT
	sleeper || return 1
	echo copied-in >"$tmp"
	c cp "$tmp" "$N:/tmp/f" || return 1
	out=$(c exec "$N" cat /tmp/f) || return 1
	expect "$out" copied-in || return 1
	rm -f "$tmp"
	c cp "$N:/etc/passwd" "$tmp" || return 1
	grep -q '^root:' "$tmp"
}

t_logs() {
	local out
	crun -d --name "$N" "$IMAGE" sh -c 'echo to-out; echo to-err >&2' || return 1
	c wait "$N" || return 1
	# Each stream to a file of its own (the trace goes to stderr too).
	c logs "$N" >"$WORK/logs.out" 2>"$WORK/logs.err" || return 1
	expect "$(cat "$WORK/logs.out")" to-out || return 1
	expect "$(cat "$WORK/logs.err")" to-err
}

# The kernel's OOM killer ends the workload in its memory cgroup; the client
# learns of it from that cgroup (containerd's shim; conmon).
t_oom() {
	local hog='x=a; while :; do x=$x$x; done' dir
	case $CLIENT in
	docker)
		crun --name "$N" --memory 32m --memory-swap 32m "$IMAGE" sh -c "$hog"
		expect $? 137 || return 1
		;;
	podman)
		# conmon 2.1.6 writes its "oom" file into its working directory,
		# podman 4.3 looks for it in the bundle and starts conmon where
		# it is itself: start from the bundle.
		c create --name "$N" --memory 32m --memory-swap 32m "$IMAGE" sh -c "$hog" || return 1
		dir=$(insp "$N" '{{.StaticDir}}') || return 1
		(cd "$dir" && c start -a "$N")
		expect $? 137 || return 1
		;;
	esac
	expect "$(insp "$N" '{{.State.OOMKilled}}')" true
}

# Bridge networking: docker wires it from the runtime's prestart hook
# (libnetwork-setkey); podman before create, into a netns path. rcnet is
# lib.sh's CNI network.
t_network() {
	local ip net=() out
	[ "$CLIENT" = podman ] && net=(--network rcnet)
	crun -d --name "$N" "${net[@]}" "$IMAGE" httpd -f -p 8080 -h /etc || return 1
	sleep 1
	case $CLIENT in
	docker) ip=$(insp "$N" '{{.NetworkSettings.IPAddress}}') ;;
	podman) ip=$(insp "$N" '{{.NetworkSettings.Networks.rcnet.IPAddress}}') ;;
	esac
	[ -n "$ip" ] || { echo "no address"; return 1; }
	out=$(c exec "$N" ip -4 addr show eth0) || return 1
	contains "$out" "$ip" || return 1
	# From another container on the bridge, and from the host.
	out=$(crun --rm "${net[@]}" "$IMAGE" wget -qO- "http://$ip:8080/group") || return 1
	contains "$out" root: || return 1
	out=$(curl -fsS --noproxy '*' --max-time 10 "http://$ip:8080/passwd") || return 1
	contains "$out" root:
}

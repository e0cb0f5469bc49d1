#!/bin/bash
# test/cri/critest.sh: cri-tools' critest against the private containerd of
# test/cri/daemons.sh, once per CRI runtime handler (runc, the yardstick,
# then railcar), in one run; then both handlers' counts side by side and the
# specs whose outcome differs.
#
# Fails when a spec fails for railcar, or when a spec runc passes does not
# pass for railcar (skipped included).
#
# Environment: HANDLERS ("runc railcar"), CRITEST_SKIP (a ginkgo regexp of
# specs left out for every handler), CRITEST_FOCUS, CRI_OUT (_output/cri),
# KEEP_DAEMONS=1 (leave registry and containerd running afterwards).
# Output in $CRI_OUT/critest/: HANDLER.log, HANDLER.json (ginkgo report),
# HANDLER.outcomes (state<TAB>spec), summary.txt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HANDLERS=${HANDLERS:-runc railcar}
# "public image with digest" pins an upstream manifest digest: no image built
# offline can have it.
CRITEST_SKIP=${CRITEST_SKIP:-public image with digest}
CRITEST_FOCUS=${CRITEST_FOCUS:-}
OUT=${CRI_OUT:-$repo/_output/cri}/critest
CRI_BIN=${RAILCAR_TEST_PREFIX:-/opt/railcar-test}/cri/bin

log() { printf '==> critest: %s\n' "$*"; }
die() { printf 'critest: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root"
"$here/tools.sh"
"$here/daemons.sh" start
[ "${KEEP_DAEMONS:-0}" = 1 ] || trap '"$here/daemons.sh" stop' EXIT
eval "$("$here/daemons.sh" env)"

mkdir -p "$OUT"
crictl=(crictl --runtime-endpoint "$CRI_ENDPOINT" --timeout 30s)

clean_pods() {
	local p
	for p in $("${crictl[@]}" pods -q 2>/dev/null); do
		"${crictl[@]}" stopp "$p" >/dev/null 2>&1 || true
		"${crictl[@]}" rmp -f "$p" >/dev/null 2>&1 || true
	done
}

run_handler() {
	local h=$1 t0=$SECONDS args rc=0
	clean_pods
	args=(--runtime-endpoint "$CRI_ENDPOINT" --image-endpoint "$CRI_ENDPOINT"
		--runtime-handler "$h" --ginkgo.no-color --ginkgo.timeout=2h
		--ginkgo.json-report="$OUT/$h.json" --nri-socket "$CRI_NRI_SOCKET")
	[ -n "$CRITEST_SKIP" ] && args+=(--ginkgo.skip="$CRITEST_SKIP")
	[ -n "$CRITEST_FOCUS" ] && args+=(--ginkgo.focus="$CRITEST_FOCUS")
	log "handler $h: critest $(critest --version 2>/dev/null | head -n1 | awk '{print $NF}'), log $OUT/$h.log"
	(cd "$OUT" && critest "${args[@]}") >"$OUT/$h.log" 2>&1 || rc=$?
	[ -s "$OUT/$h.json" ] || { tail -n 30 "$OUT/$h.log" >&2; die "handler $h: critest wrote no report (exit $rc)"; }
	# state<TAB>spec, one It a line.
	jq -r '.[].SpecReports[] | select(.LeafNodeType == "It")
		| [.State, ((.ContainerHierarchyTexts + [.LeafNodeText]) | join(" "))] | @tsv' "$OUT/$h.json" |
		sort -t$'\t' -k2 >"$OUT/$h.outcomes"
	log "handler $h: done in $((SECONDS - t0))s (critest exit $rc)"
}

for h in $HANDLERS; do run_handler "$h"; done

count() { awk -F'\t' -v s="$2" '$1 == s' "$OUT/$1.outcomes" | wc -l; }
summary() {
	local h s
	printf '%-10s %7s %7s %7s %7s\n' handler passed failed skipped total
	for h in $HANDLERS; do
		printf '%-10s %7s %7s %7s %7s\n' "$h" "$(count "$h" passed)" \
			"$(($(count "$h" failed) + $(count "$h" panicked) + $(count "$h" timedout)))" \
			"$(count "$h" skipped)" "$(wc -l <"$OUT/$h.outcomes")"
	done
	set -- $HANDLERS
	if [ $# -eq 2 ]; then
		echo
		echo "specs whose outcome differs ($1 -> $2):"
		join -t$'\t' -1 2 -2 2 -a1 -a2 -e missing -o 0,1.1,2.1 \
			<(sort -t$'\t' -k2 "$OUT/$1.outcomes") <(sort -t$'\t' -k2 "$OUT/$2.outcomes") |
			awk -F'\t' '$2 != $3 { printf "  %-8s -> %-8s %s\n", $2, $3, $1; n++ } END { if (!n) print "  (none)" }'
	fi
	for h in $HANDLERS; do
		if [ "$(count "$h" failed)" -gt 0 ]; then
			echo
			echo "$h failures:"
			jq -r '.[].SpecReports[] | select(.LeafNodeType == "It" and (.State == "failed" or .State == "panicked" or .State == "timedout"))
				| "  " + ((.ContainerHierarchyTexts + [.LeafNodeText]) | join(" ")) + "\n      " + (.Failure.Message | split("\n") | map(select(length > 0)) | .[0:3] | join(" | "))' "$OUT/$h.json"
		fi
	done
}
summary | tee "$OUT/summary.txt"

# The bar: railcar fails nothing and passes every spec runc passes.
if [[ " $HANDLERS " == *" railcar "* ]]; then
	bad=$(count railcar failed)
	if [[ " $HANDLERS " == *" runc "* ]]; then
		missed=$(join -t$'\t' -1 2 -2 2 -o 0,1.1,2.1 <(sort -t$'\t' -k2 "$OUT/runc.outcomes") <(sort -t$'\t' -k2 "$OUT/railcar.outcomes") |
			awk -F'\t' '$2 == "passed" && $3 != "passed"' | wc -l)
	else
		missed=0
	fi
	if [ "$bad" -gt 0 ] || [ "$missed" -gt 0 ]; then
		die "railcar: $bad failed, $missed passed by runc but not by railcar (see $OUT)"
	fi
	log "railcar passes every spec runc passes and fails none"
fi

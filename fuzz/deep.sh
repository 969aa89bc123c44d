#!/usr/bin/env bash
# `make fuzz-deep`: each target in chunks of FUZZ_DEEP_CHUNK executions until it has run
# FUZZ_DEEP_RUNS and its coverage stopped growing over the last chunk (or FUZZ_DEEP_SECONDS
# ran out: every run is bounded), then `cargo fuzz cmin` over the grown corpus and the new
# inputs copied into the committed seeds. One line per target: executions, cov, ft, crashes.
# Usage: fuzz/deep.sh TARGET... (from the repository root).
set -euo pipefail
runs=${FUZZ_DEEP_RUNS:-10000000}
chunk=${FUZZ_DEEP_CHUNK:-1000000}
seconds=${FUZZ_DEEP_SECONDS:-3600}
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
status=0
for target in "$@"; do
	mkdir -p "corpus/$target" "seeds/$target"
	cp -n "seeds/$target"/* "corpus/$target"/ 2>/dev/null || true
	executed=0 cov=0 ft=0 crashes=0 last_cov=-1
	deadline=$(( $(date +%s) + seconds ))
	log=$(mktemp)
	while :; do
		left=$(( deadline - $(date +%s) ))
		(( left > 0 )) || break
		if ! cargo fuzz run --sanitizer none "$target" "corpus/$target" -- -runs="$chunk" \
			-max_total_time="$left" -print_final_stats=1 >"$log" 2>&1; then
			crashes=$(( crashes + 1 ))
			grep -E "panicked|SUMMARY|Test unit written" "$log" | head -5
		fi
		n=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" | tail -1)
		executed=$(( executed + ${n:-0} ))
		done_line=$(grep -E "DONE|#[0-9]+.*cov:" "$log" | tail -1)
		cov=$(sed -n 's/.*cov: \([0-9]*\).*/\1/p' <<<"$done_line")
		ft=$(sed -n 's/.*ft: \([0-9]*\).*/\1/p' <<<"$done_line")
		(( crashes == 0 )) || break
		if (( executed >= runs && ${cov:-0} <= last_cov )); then break; fi
		last_cov=${cov:-0}
	done
	rm -f "$log"
	cargo fuzz cmin --sanitizer none "$target" "corpus/$target" >/dev/null 2>&1 || true
	before=$(ls "seeds/$target" | wc -l)
	cp -n "corpus/$target"/* "seeds/$target"/ 2>/dev/null || true
	after=$(ls "seeds/$target" | wc -l)
	echo "fuzz-deep: $target: executions $executed, cov ${cov:-?}, ft ${ft:-?}, crashes $crashes, seeds $before -> $after"
	(( crashes == 0 )) || status=1
done
exit $status

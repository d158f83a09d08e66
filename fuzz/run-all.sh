#!/usr/bin/env bash
# Builds every fuzz target and runs each for DURATION seconds, then prints one line per target:
# run length, executions, executions per second, corpus growth and findings (crash, leak,
# timeout and OOM artifacts written during this run).
#
#   fuzz/run-all.sh DURATION [TARGET...]     e.g. fuzz/run-all.sh 600
#
# JOBS=N runs N targets at a time (default 1: fuzzing shares the machine). The working corpus
# (fuzz/corpus/T, seeded from fuzz/seeds/T) is kept between runs; logs go to fuzz/logs/T.log,
# findings to fuzz/artifacts/T/. Needs cargo-fuzz; RUSTC_BOOTSTRAP=1 lets it build on stable.
# Exit status: 1 when any target found something, 2 on a build or usage error.
set -euo pipefail

usage() { echo "usage: $0 DURATION_SECONDS [TARGET...]" >&2; exit 2; }
[[ $# -ge 1 && $1 =~ ^[0-9]+$ ]] || usage
duration=$1
shift
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
jobs=${JOBS:-1}

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
echo "building ${#targets[@]} targets: ${targets[*]}" >&2
for t in "${targets[@]}"; do
    cargo fuzz build -O "$t" >&2 || exit 2
done

mkdir -p logs
stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
# One target: run it, then print its summary line (read from libFuzzer's final stats).
run_one() {
    local t=$1 log=logs/$1.log marker
    mkdir -p "corpus/$t" "artifacts/$t"
    marker=$(mktemp)
    local before after seeds=()
    before=$(find "corpus/$t" -type f | wc -l)
    [[ -d seeds/$t ]] && seeds=("seeds/$t")
    # config_parse also starts from Debian's installed samples and the project's corpus
    # (read where they are, not copied into seeds/).
    if [[ $t == config_parse ]]; then
        for d in /usr/share/doc/keepalived/samples ../keepalived-conf/tests/corpus; do
            [[ -d $d ]] && seeds+=("$d")
        done
    fi
    local start=$SECONDS rc=0
    cargo fuzz run -O "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$duration" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    local took=$((SECONDS - start))
    after=$(find "corpus/$t" -type f | wc -l)
    local execs rate findings
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    findings=$(find "artifacts/$t" -type f -newer "$marker" | wc -l)
    rm -f "$marker"
    printf '%-16s %6ss %12s %10s %7s %7s %4s %s\n' "$t" "$took" "${execs:-?}" "${rate:-?}" \
        "$before" "$after" "$findings" "$( ((rc == 0)) && echo ok || echo "exit $rc, see fuzz/$log")"
}

printf '%-16s %7s %12s %10s %7s %7s %4s %s\n' target time execs exec/s corpus0 corpus1 finds status
running=0
for t in "${targets[@]}"; do
    run_one "$t" &
    running=$((running + 1))
    if ((running >= jobs)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
# Any artifact written during this run is a finding to look at.
if find artifacts -type f -newer "$stamp" -print -quit | grep -q .; then
    exit 1
fi

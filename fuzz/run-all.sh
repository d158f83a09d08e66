#!/usr/bin/env bash
# Builds every fuzz target and runs each for DURATION seconds, then prints one line per target:
# run length, executions, executions per second (of wall-clock time, as libFuzzer counts, and
# of the CPU time the run got), coverage (libFuzzer's `cov` edges and `ft` features at the
# end), corpus growth and findings (crash, leak, timeout and OOM artifacts written during this
# run).
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

# How each target is built. keepalived-conf forbids unsafe code, so AddressSanitizer has nothing
# to find in config_parse that a panic would not show, and its allocator, with the comparison
# tracing, cost the parser three quarters of its speed; keywords are still learnt from the
# memcmp hooks (slice equality). Plain coverage there, ASan and comparison tracing elsewhere.
build_flags() {
    case $1 in
    config_parse) echo "-s none --no-trace-compares" ;;
    *) echo "-s address" ;;
    esac
}

# libFuzzer options of each run. libFuzzer takes its input size bound from the largest seed;
# config_parse's seeds are real files of up to 3.3 KB, and its time per input grows with the
# lines it reads: 2 KB (126 of its 130 seeds whole) ran 30 % more inputs per second in a
# 120 s comparison, with no less coverage.
run_flags() {
    case $1 in
    config_parse) echo "-max_len=2048" ;;
    esac
}

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi
echo "building ${#targets[@]} targets: ${targets[*]}" >&2
for t in "${targets[@]}"; do
    # shellcheck disable=SC2046 # the flags are words
    cargo fuzz build -O $(build_flags "$t") "$t" >&2 || exit 2
done

mkdir -p logs
stamp=$(mktemp)
# Each run works on a copy of its corpus in memory, copied back when it ends: libFuzzer writes
# every new input as a file and deletes the ones a smaller input replaces, thousands a minute,
# and on ext4 that churn took 12 % of a config_parse run in 120 s (3.4 s of system time on
# tmpfs against 15.0 s; 6,357 against 5,499 executions per second; over 600 s the rates were
# within noise). FUZZ_TMP names another place; with no tmpfs, the corpus is used where it is.
work_root=${FUZZ_TMP:-/dev/shm}
[[ -d $work_root && -w $work_root ]] || work_root=
trap 'rm -f "$stamp"' EXIT
# One target: run it, then print its summary line (read from libFuzzer's final stats).
run_one() {
    local t=$1 log=logs/$1.log marker
    mkdir -p "corpus/$t" "artifacts/$t"
    marker=$(mktemp)
    local before after seeds=()
    before=$(find "corpus/$t" -type f | wc -l)
    [[ -d seeds/$t ]] && seeds=("seeds/$t")
    local corpus=corpus/$t
    if [[ -n $work_root ]]; then
        corpus=$(mktemp -d "$work_root/vrrpd-fuzz-$t.XXXXXX")
        # Removed when run_one ends (it runs in a subshell of its own: this trap is its own).
        # shellcheck disable=SC2064 # the name is fixed now
        trap "rm -rf -- '$corpus'" EXIT
        cp -r "corpus/$t/." "$corpus/"
    fi
    # config_parse also starts from Debian's installed samples and the project's corpus
    # (read where they are, not copied into seeds/).
    if [[ $t == config_parse ]]; then
        for d in /usr/share/doc/keepalived/samples ../keepalived-conf/tests/corpus; do
            [[ -d $d ]] && seeds+=("$d")
        done
    fi
    local start=$SECONDS rc=0 cpu
    cpu=$(mktemp)
    # shellcheck disable=SC2046
    # Bounded: libFuzzer's timeout handler can deadlock when the alarm lands inside malloc (it
    # allocates to write the artifact), and the run then never ends; the artifact's name is
    # written first, so the finding still counts, and the unit can be read from the process
    # with gdb before the kill (fuzz/README.md).
    /usr/bin/time -o "$cpu" -f "%U %S" timeout -k 10 $((duration + 120)) \
        cargo fuzz run -O $(build_flags "$t") "$t" "$corpus" \
        "${seeds[@]}" -- -max_total_time="$duration" -timeout=10 -print_final_stats=1 $(run_flags "$t") \
        >"$log" 2>&1 || rc=$?
    local took=$((SECONDS - start))
    # libFuzzer only adds to what it was given (it deletes only inputs of its own run).
    if [[ $corpus != "corpus/$t" ]]; then
        cp -rn "$corpus/." "corpus/$t/"
    fi
    # Executions per second of CPU time: what the target does with a core of its own, whatever
    # else the machine runs (libFuzzer's own figure is per second of wall-clock time).
    local cpu_s
    cpu_s=$(awk '/^[0-9.]+ [0-9.]+$/ { print $1 + $2 }' "$cpu")
    rm -f "$cpu"
    after=$(find "corpus/$t" -type f | wc -l)
    local execs rate findings
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    findings=$(find "artifacts/$t" -type f -newer "$marker" | wc -l)
    # The last status line (`#N DONE cov: C ft: F corp: ...`): coverage reached.
    local cov ft
    cov=$(grep -a '^#[0-9]' "$log" | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(grep -a '^#[0-9]' "$log" | tail -1 | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    rm -f "$marker"
    local per_cpu=?
    if [[ -n $execs && -n $cpu_s ]]; then
        per_cpu=$(awk -v e="$execs" -v c="$cpu_s" 'BEGIN { if (c > 0) printf "%.0f", e / c; else print "?" }')
    fi
    printf '%-16s %6ss %12s %10s %10s %6s %7s %7s %7s %4s %s\n' "$t" "$took" "${execs:-?}" \
        "${rate:-?}" "$per_cpu" "${cov:-?}" "${ft:-?}" "$before" "$after" "$findings" \
        "$( ((rc == 0)) && echo ok || echo "exit $rc, see fuzz/$log")"
}

printf '%-16s %7s %12s %10s %10s %6s %7s %7s %7s %4s %s\n' target time execs exec/s exec/cpu-s \
    cov ft corpus0 corpus1 finds status
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

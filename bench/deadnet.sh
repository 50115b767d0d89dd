#!/usr/bin/env bash
# What a dead destination costs (issue 12): `restic-manager run` of one
# service to a local destination and a REST destination whose port refuses
# connections, on each restic version, with the connect check and the stall
# limit switched off (what every version did before they existed) and with
# their defaults. All cases run at the same time: a restic that retries
# mostly sleeps, so they do not slow each other down.
#
# Usage: bench/deadnet.sh [--quick] [--help]
#   --quick   only the defaults (the "before" cases of restic >= 0.17 take
#             about 15 minutes each).
# Environment:
#   VERSIONS   restic versions (default "0.14 0.18 0.19"; fetched by
#              scripts/restic-versions.sh into target/restic/VER)
#   RM_BIN     restic-manager binary (default target/release, else
#              target/debug)
#   BENCH_DIR  work directory (default bench/work; this script uses deadnet/)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
quick=0
case "${1:-}" in
--help | -h)
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 0
    ;;
--quick) quick=1 ;;
"") ;;
*)
    echo "deadnet.sh: unknown argument $1 (see --help)" >&2
    exit 1
    ;;
esac
bin=${RM_BIN:-}
if [ -z "$bin" ]; then
    for b in "$root/target/release/restic-manager" "$root/target/debug/restic-manager"; do
        [ -x "$b" ] && bin=$b && break
    done
fi
[ -x "${bin:-}" ] || {
    echo "deadnet.sh: no restic-manager binary: run cargo build --release or set RM_BIN" >&2
    exit 1
}
work=${BENCH_DIR:-$root/bench/work}/deadnet
rm -rf "$work"
mkdir -p "$work"

# A port nothing listens on: bind, note, close.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

case_dir() { echo "$work/$1-$2"; }

start_case() {
    local ver=$1 mode=$2 dir restic limits=""
    dir=$(case_dir "$ver" "$mode")
    restic=$root/target/restic/$ver/restic
    [ -x "$restic" ] || "$root/scripts/restic-versions.sh" "$ver" >/dev/null
    mkdir -p "$dir/data" "$dir/home"
    echo "some data" >"$dir/data/a.txt"
    echo "bench-password" >"$dir/pw"
    write_config "$dir" "$restic" ""
    if [ "$mode" = before ]; then
        limits=$'destination_connect_timeout_seconds = 0\ndestination_stall_timeout_seconds = 0'
    fi
    (
        export HOME=$dir/home XDG_CONFIG_HOME=$dir/home/.config XDG_STATE_HOME=$dir/home/.state \
            XDG_DATA_HOME=$dir/home/.data XDG_RUNTIME_DIR=$dir/home/.run
        mkdir -p "$XDG_RUNTIME_DIR"
        # With the checks on, so the dead destination costs setup nothing.
        "$bin" -c "$dir/config.toml" setup --no-schedule >"$dir/setup.log" 2>&1 || true
        write_config "$dir" "$restic" "$limits"
        start=$(date +%s.%N)
        code=0
        "$bin" -c "$dir/config.toml" run >"$dir/run.log" 2>&1 || code=$?
        end=$(date +%s.%N)
        printf '%s %s\n' "$(echo "$end - $start" | bc)" "$code" >"$dir/result"
    ) &
}

write_config() {
    local dir=$1 restic=$2 limits=$3
    cat >"$dir/config.toml" <<EOF
[global]
restic_binary = "$restic"
restic_password_file = "$dir/pw"
host = "bench"
state_directory = "$dir/state"
$limits

[destinations.local]
type = "local"
path = "$dir/repo"

[destinations.dead]
type = "rest"
url = "http://127.0.0.1:$port/"

[services.docs]
targets = ["local", "dead"]

[services.docs.config]
paths = ["$dir/data"]
EOF
}

modes=(after)
[ "$quick" = 1 ] || modes+=(before)
for ver in ${VERSIONS:-0.14 0.18 0.19}; do
    for mode in "${modes[@]}"; do
        start_case "$ver" "$mode"
    done
done
wait

printf '\n%-8s %-34s %-34s\n' "restic" "checks off (before)" "defaults (after)"
for ver in ${VERSIONS:-0.14 0.18 0.19}; do
    row=()
    for mode in before after; do
        f=$(case_dir "$ver" "$mode")/result
        if [ -f "$f" ]; then
            read -r secs code <"$f"
            row+=("$(printf '%.1f s (exit %s)' "$secs" "$code")")
        else
            row+=("not measured")
        fi
    done
    printf '%-8s %-34s %-34s\n' "$ver" "${row[0]}" "${row[1]}"
done
echo
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "logs: $work/*/run.log"

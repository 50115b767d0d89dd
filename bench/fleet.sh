#!/usr/bin/env bash
# bench/fleet.sh: how many hosts one Pushgateway holds (issue 15, "fleet").
#
# Makes one real host's exposition: a configuration of SERVICES services
# with 2 local destinations each, `setup`, `run`, `verify`, then `metrics`.
# Starts Debian's prometheus-pushgateway on loopback and pushes that
# exposition as host h1…hN (the `host` label and the grouping key
# rewritten, as N real hosts would push), for N in HOSTS. For each N it
# prints the series held, the time of one push, the time and size of one
# scrape of the Pushgateway (what Prometheus pays every scrape interval)
# and the Pushgateway's resident memory.
#
# Usage: bench/fleet.sh           (RM_BIN=path skips the build)
#        SERVICES=20 HOSTS="100 500 1000" bench/fleet.sh
# Needs: bash, curl, restic, prometheus-pushgateway (apt-get install
# prometheus-pushgateway curl).
set -euo pipefail
export LC_ALL=C

SERVICES=${SERVICES:-10}
HOSTS=${HOSTS:-"10 100 300 1000"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rm-bench-fleet.XXXXXX")
PGW_PID=
cleanup() {
    [[ -z $PGW_PID ]] || kill "$PGW_PID" 2>/dev/null || true
    [[ -n ${KEEP:-} ]] || rm -rf "$WORK"
}
trap cleanup EXIT
echo "work: $WORK" >&2

die() {
    printf 'fleet.sh: error: %s\n' "$*" >&2
    exit 1
}
PGW=$(command -v prometheus-pushgateway || true)
[[ -n $PGW ]] || die "prometheus-pushgateway not found; apt-get install prometheus-pushgateway"
command -v curl >/dev/null || die "curl not found; apt-get install curl"
if [[ -n ${RM_BIN:-} ]]; then
    [[ -x $RM_BIN ]] || die "RM_BIN \`$RM_BIN\` is not executable"
else
    echo "building restic-manager (cargo build --release)" >&2
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    RM_BIN=$ROOT/target/release/restic-manager
fi

# --- one real host's exposition ------------------------------------------
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config XDG_STATE_HOME=$WORK/state \
    XDG_CACHE_HOME=$WORK/cache XDG_RUNTIME_DIR=$WORK/run XDG_DATA_HOME=$WORK/data
mkdir -p "$XDG_CONFIG_HOME/restic-manager" "$XDG_RUNTIME_DIR"
CONFIG=$XDG_CONFIG_HOME/restic-manager/config.toml
{
    printf '[global]\nrestic_password_file = "%s/pw"\nhost = "h0"\n\n' "$WORK"
    printf '[destinations.nas]\ntype = "local"\npath = "%s/nas"\n\n' "$WORK"
    printf '[destinations.usb]\ntype = "local"\npath = "%s/usb"\n\n' "$WORK"
    for i in $(seq 1 "$SERVICES"); do
        mkdir -p "$WORK/src/s$i"
        echo "service $i" >"$WORK/src/s$i/file.txt"
        printf '[services.s%d]\ntargets = ["nas", "usb"]\n[services.s%d.config]\npaths = ["%s/src/s%d"]\n\n' \
            "$i" "$i" "$WORK" "$i"
    done
} >"$CONFIG"
echo "one host: $SERVICES services x 2 destinations: setup, run, verify" >&2
"$RM_BIN" -q setup --no-schedule >/dev/null
"$RM_BIN" -q run >/dev/null
"$RM_BIN" -q verify >/dev/null
"$RM_BIN" metrics >"$WORK/host.prom"
SERIES=$(grep -vc '^#' "$WORK/host.prom")

# --- the Pushgateway -------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PGW" --web.listen-address="127.0.0.1:$PORT" >"$WORK/pgw.log" 2>&1 &
PGW_PID=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/-/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/-/ready" >/dev/null || die "the Pushgateway did not start; see $WORK/pgw.log"

ms() { date +%s%3N; }
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$PGW_PID/status"; }

printf '\nper host: %d series (%d services x 2 destinations), %d bytes of exposition\n' \
    "$SERIES" "$SERVICES" "$(wc -c <"$WORK/host.prom")"
printf 'load before: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-6s %-10s %-10s %-12s %-12s %-8s\n' hosts series push_ms scrape_ms scrape_MB rss_MB
pushed=0
for n in $HOSTS; do
    start=$(ms)
    count=0
    while ((pushed < n)); do
        pushed=$((pushed + 1))
        count=$((count + 1))
        sed "s/host=\"h0\"/host=\"h$pushed\"/" "$WORK/host.prom" |
            curl -fs -X PUT --data-binary @- "http://127.0.0.1:$PORT/metrics/job/restic-manager/host/h$pushed" ||
            die "push of h$pushed failed"
    done
    push_ms=$(( (count > 0) ? ($(ms) - start) / count : 0 ))
    best=
    for _ in 1 2 3; do
        s=$(ms)
        curl -fs "http://127.0.0.1:$PORT/metrics" -o "$WORK/scrape.txt"
        t=$(($(ms) - s))
        [[ -z $best || $t -lt $best ]] && best=$t
    done
    held=$(grep -c '^restic_manager_' "$WORK/scrape.txt")
    mb=$(awk -v b="$(wc -c <"$WORK/scrape.txt")" 'BEGIN {printf "%.1f", b/1048576}')
    printf '%-6s %-10s %-10s %-12s %-12s %-8s\n' "$n" "$held" "$push_ms" "$best" "$mb" "$(rss_mb)"
done
printf '\nload after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

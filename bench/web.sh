#!/usr/bin/env bash
# Load on the dashboard (issue 8, "Load"): 50 concurrent clients fetch the
# overview page (`GET /`, authenticated with the Bearer token) for 10 s on
# loopback with wrk. The overview reads history for every service (recent
# runs, newest snapshots, next scheduled run) and renders the page, so the
# same run also measures `GET /static/style.css` (no history, no
# rendering) on the same server as the floor this machine allows.
#
# Set-up: SERVICES services (default 8), each backed up RUNS times (default
# 5) with real restic to a local repository, so history has real rows.
#
# Prints requests/s, p50/p90/p99 latency and errors (socket errors and
# non-2xx answers) for both routes, and the overview/static p99 ratio.
# Exit 0 when the overview had no errors, 1 otherwise.
#
# Usage: bench/web.sh [--help]
# Environment:
#   CLIENTS    concurrent connections (default 50)
#   SECONDS_   duration in seconds (default 10)
#   SERVICES   services on the overview (default 8)
#   RUNS       backups per service before measuring (default 5)
#   BENCH_DIR  work directory (default bench/work; this script uses web/)
#   RM_BIN     restic-manager binary (default: cargo build --release)
# Needs wrk (apt-get install wrk), restic and curl.
set -euo pipefail

BENCH_NAME=web.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLIENTS=${CLIENTS:-50}
DURATION=${SECONDS_:-10}
NSERVICES=${SERVICES:-8}
NRUNS=${RUNS:-5}

parse_common_args "$@"
command -v wrk >/dev/null || die "wrk not found; install it (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found; install it (apt-get install curl)"
locate_binaries
setup_env

W=$BENCH_DIR/web
rm -rf "$W"
mkdir -p "$W/data" "$W/state"
{
    printf '[global]\nrestic_password_file = "%s"\nstate_directory = "%s/state"\nlock_directory = "%s/locks"\n\n' "$PW" "$W" "$W"
    printf '[destinations.local]\ntype = "local"\npath = "%s/repo"\n\n' "$W"
    for i in $(seq 1 "$NSERVICES"); do
        mkdir -p "$W/data/svc$i"
        head -c 200000 /dev/urandom >"$W/data/svc$i/blob"
        printf '[services.svc%d]\ntargets = ["local"]\nschedule = "%d 3 * * *"\n[services.svc%d.config]\npaths = ["%s/data/svc%d"]\n\n' \
            "$i" "$i" "$i" "$W" "$i"
    done
    printf '[web]\nlisten = "127.0.0.1:0"\n'
} >"$W/config.toml"
RM=("$RM_BIN" --config "$W/config.toml")

note "setting up $NSERVICES services and backing each up $NRUNS times"
"${RM[@]}" setup --no-schedule >/dev/null
for _ in $(seq 1 "$NRUNS"); do
    for i in $(seq 1 "$NSERVICES"); do
        echo "$RANDOM" >>"$W/data/svc$i/changes"
    done
    "${RM[@]}" run --quiet >/dev/null
done

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"${RM[@]}" serve --listen "127.0.0.1:$PORT" 2>"$W/serve.log" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/login" >/dev/null && break
    sleep 0.1
done
TOKEN=$(cat "$W/state/web-token")
curl -fs -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT/" | grep -q 'table class="overview"' ||
    die "the overview did not render; see $W/serve.log"

# wrk's latency in its own units (us, ms, s) → milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000
        printf "%.2f", n }'
}

# measure PATH → sets RPS P50 P90 P99 ERRORS
measure() {
    local out
    out=$(wrk -t2 -c"$CLIENTS" -d"${DURATION}s" --latency \
        -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$1")
    RPS=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
    P50=$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")
    P90=$(to_ms "$(awk '$1 == "90%" {print $2}' <<<"$out")")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
    local sock non2xx
    sock=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    ERRORS=$((${sock:-0} + ${non2xx:-0}))
    REQUESTS=$(awk '/requests in/ {print $1}' <<<"$out")
}

note "measuring: $CLIENTS clients, ${DURATION}s per route"
measure /static/style.css
S_RPS=$RPS S_P50=$P50 S_P90=$P90 S_P99=$P99 S_ERR=$ERRORS S_REQ=$REQUESTS
measure /
printf '\nrestic-manager serve, %s clients, %ss each, %s services x %s runs in history (%s)\n' \
    "$CLIENTS" "$DURATION" "$NSERVICES" "$NRUNS" "$(nproc) cores"
printf '%-20s %10s %10s %9s %9s %9s %7s\n' route requests req/s p50_ms p90_ms p99_ms errors
printf '%-20s %10s %10s %9s %9s %9s %7s\n' "GET /static/style.css" "$S_REQ" "$S_RPS" "$S_P50" "$S_P90" "$S_P99" "$S_ERR"
printf '%-20s %10s %10s %9s %9s %9s %7s\n' "GET / (overview)" "$REQUESTS" "$RPS" "$P50" "$P90" "$P99" "$ERRORS"
printf 'overview p99 / static p99: %s\n' "$(awk -v a="$P99" -v b="$S_P99" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')"
if [[ $ERRORS -ne 0 ]]; then
    printf 'FAIL: %s errors on the overview\n' "$ERRORS"
    exit 1
fi
printf 'PASS: no errors\n'

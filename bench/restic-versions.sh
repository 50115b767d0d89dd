#!/usr/bin/env bash
# What a failed dump and a Ctrl-C during a dump cost with each restic
# version (issue 12, item 3), and the dump pump against restic's own
# `--stdin-from-command` (item 4).
#
# For each restic of the matrix (scripts/restic-versions.sh fetches 0.18
# and 0.19 into target/restic/) and each restic-manager binary given:
#   fail:   `restic-manager run` of a `command` dump that writes 3 MB,
#           then exits 1; seconds until it returns (and the snapshot count:
#           must be 0)
#   ctrl-c: the same dump writes 3 MB, then sleeps; SIGINT to
#           restic-manager once the data is out; seconds until it returns
# and, once per restic >= 0.17, the time to store DUMP_MB of random data:
#   pump:   restic-manager's `command` dump (its own pipe into `--stdin`)
#   stdin:  bare `sh -c CMD | restic backup --stdin`
#   sfc:    bare `restic backup --stdin-from-command -- sh -c CMD`
#
# Usage: bench/restic-versions.sh [RM_BIN [RM_BIN_BEFORE]]
#   RM_BIN defaults to target/debug/restic-manager (cargo build). Give the
#   binary of an older commit as RM_BIN_BEFORE to compare.
# Environment: DUMP_MB (default 200), BENCH_DIR (default bench/work).
set -euo pipefail
cd "$(dirname "$0")/.."
export LC_ALL=C
DUMP_MB=${DUMP_MB:-200}
BENCH_DIR=${BENCH_DIR:-$PWD/bench/work}/restic-versions
RM_BIN=${1:-$PWD/target/debug/restic-manager}
BEFORE=${2:-}
[ -x "$RM_BIN" ] || { echo "error: $RM_BIN is not built; run cargo build" >&2; exit 1; }

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# scenario DIR COMMAND: a HOME with a config of one `command` dump.
scenario() {
    local d=$1
    rm -rf "$d"
    mkdir -p "$d/home/.config/restic-manager" "$d/state" "$d/cache"
    echo "bench password" >"$d/pw"
    cat >"$d/home/.config/restic-manager/config.toml" <<EOF
[global]
restic_password_file = "$d/pw"

[destinations.local]
type = "local"
path = "$d/repo"

[services.app]
targets = ["local"]

[[services.app.config.dumps]]
name = "data"
command = '''$2'''
EOF
}

rm_env() {
    local d=$1
    shift
    env -i PATH="$PATH" HOME="$d/home" XDG_CONFIG_HOME="$d/home/.config" \
        XDG_STATE_HOME="$d/state" XDG_CACHE_HOME="$d/cache" XDG_RUNTIME_DIR="$d" "$@"
}

count() {
    RESTIC_PASSWORD_FILE="$1/pw" XDG_CACHE_HOME="$1/cache" restic -r "$1/repo/app" snapshots --json |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

printf '%-7s %-8s %10s %10s\n' restic binary "fail (s)" "ctrl-c (s)"
while read -r ver dir; do
    for bin in "$RM_BIN" $BEFORE; do
        label=after
        [ "$bin" = "$RM_BIN" ] || label=before
        d="$BENCH_DIR/$ver-$label"
        export PATH="$dir:$PATH"
        scenario "$d/f" 'head -c 3000000 /dev/urandom; sleep 0.5; exit 1'
        rm_env "$d/f" "$bin" setup >/dev/null
        t0=$(now)
        rm_env "$d/f" "$bin" run >/dev/null 2>&1 || true
        t1=$(now)
        fail="$(secs "$t0" "$t1") ($(count "$d/f") snapshots)"
        scenario "$d/c" "head -c 3000000 /dev/zero; touch $d/c/started; sleep 60"
        rm_env "$d/c" "$bin" setup >/dev/null
        # Job control on: a background job of a script otherwise ignores SIGINT.
        set -m
        rm_env "$d/c" "$bin" run >/dev/null 2>&1 &
        pid=$!
        set +m
        while [ ! -e "$d/c/started" ]; do sleep 0.05; done
        t0=$(now)
        kill -INT -- "-$pid"   # the job's process group, like a terminal
        wait "$pid" || true
        t1=$(now)
        ctrlc="$(secs "$t0" "$t1") ($(count "$d/c") snapshots)"
        printf '%-7s %-8s %18s %18s\n' "$ver" "$label" "$fail" "$ctrlc"
        PATH=${PATH#"$dir:"}
    done
done < <(scripts/restic-versions.sh 2>/dev/null)

echo
echo "storing $DUMP_MB MB of random data (seconds):"
printf '%-7s %8s %8s %8s\n' restic pump stdin sfc
CMD="head -c ${DUMP_MB}000000 /dev/urandom"
while read -r ver dir; do
    [ "$ver" != 0.14 ] || continue
    export PATH="$dir:$PATH"
    d="$BENCH_DIR/$ver-speed"
    scenario "$d" "$CMD"
    rm_env "$d" "$RM_BIN" setup >/dev/null
    t0=$(now)
    rm_env "$d" "$RM_BIN" run >/dev/null
    t1=$(now)
    pump=$(secs "$t0" "$t1")
    export RESTIC_PASSWORD_FILE="$d/pw" XDG_CACHE_HOME="$d/cache"
    for kind in stdin sfc; do
        rm -rf "$d/bare"
        restic -r "$d/bare" init -q >/dev/null
        t0=$(now)
        if [ "$kind" = stdin ]; then
            sh -c "$CMD" | restic -r "$d/bare" backup -q --stdin --stdin-filename data >/dev/null
        else
            restic -r "$d/bare" backup -q --stdin-filename data --stdin-from-command -- sh -c "$CMD" >/dev/null
        fi
        t1=$(now)
        eval "$kind=$(secs "$t0" "$t1")"
    done
    unset RESTIC_PASSWORD_FILE XDG_CACHE_HOME
    # shellcheck disable=SC2154 # set by the eval above
    printf '%-7s %8s %8s %8s\n' "$ver" "$pump" "$stdin" "$sfc"
    PATH=${PATH#"$dir:"}
done < <(scripts/restic-versions.sh 2>/dev/null)

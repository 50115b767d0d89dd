#!/usr/bin/env bash
# The whole job users wait for, against the same job done by bare restic in
# the same run (issue 14): paired rounds, alternating which side goes first,
# medians of wall time, and the machine's load while measuring.
#
# (r3) `restic-manager run` of one service to three local destinations
#      with retention (`retention_last`, `prune = "never"`), incremental
#      with no change, against bare restic doing per destination one
#      `backup` and one `forget --keep-last N` (called as src/restic/ops.rs
#      calls them), the three destinations one after another. Two cases:
#      `keep` (the policy removes nothing) and `remove` (every run removes
#      the oldest snapshot). Target (keep): <= 0.50.
# (r1) The same with one destination. Target (keep): <= 1.03.
# (drill) `verify --drill` of one destination with `drill_sample_files =
#      DRILL_FILES` against bare `restic check` plus one `restic restore
#      --include` of DRILL_FILES random files of the tree. Target: <= 1.5.
# (live) `status --live` of 10 services x 3 destinations (30 repositories)
#      against one bare `restic snapshots --json` per repository, run one
#      after another. Target: <= 1.2.
# (browse) The dashboard's snapshot page opening one folder (the tree's
#      fullest), fetched with curl, against the bare `restic ls --json
#      SNAPSHOT DIR` it runs. No target in the issue; reported.
# (rss) The manager's peak RSS (VmHWM) during a 3-destination run with
#      retention (<= 30 MB), and `validate` of 1000 services (< 100 ms).
#
# Usage: bench/job.sh [--write-results] [--help]
# Environment:
#   REPS         paired rounds per case (default 5)
#   CASES        the cases to measure, comma-separated, from r3, r1, rss,
#                validate, drill (with browse), live (default: all)
#   DRILL_FILES  files a drill samples (default 50)
#   BENCH_DIR    work directory (default bench/work; this script uses job/)
#   RM_BIN       restic-manager binary (default: cargo build --release)
#   RESTIC       restic binary (default: `restic` on PATH)
# Exit: 0 every target met, 3 a target missed, 1 error.
set -euo pipefail

BENCH_NAME=job.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DRILL_FILES=${DRILL_FILES:-50}
KEEP_NOTHING_REMOVED=1000
KEEP_REMOVING=2

parse_common_args "$@"
[[ -n ${CASES:-} ]] && COMMAND_LINE="CASES=$CASES $COMMAND_LINE"
CASES=${CASES:-r3,r1,rss,validate,drill,live}
for c in ${CASES//,/ }; do
    case $c in r3 | r1 | rss | validate | drill | live) ;; *) die "unknown case \`$c\` in CASES; see --help" ;; esac
done
# want CASE: whether CASES holds CASE.
want() { [[ ,$CASES, == *",$1,"* ]]; }
locate_binaries
setup_env
build_tree
tree_stats

J=$BENCH_DIR/job
LOGS=$J/logs
rm -rf "$J"
mkdir -p "$LOGS"
MISSED=0
LOADS=()
OUT=()
say() {
    printf '%s\n' "$*"
    OUT+=("$*")
}

# One template repository, so every repository below has the same key cost
# (restic init calibrates scrypt to the load of the moment).
note "creating the template repository (not timed)"
restic_on "$J/template" "$J/cache-init" init >"$LOGS/init.log" 2>&1 ||
    { cat "$LOGS/init.log" >&2; die "restic init failed"; }
KDF=$(kdf_of "$J/template")

# --- run with retention ---------------------------------------------------------

# Config of side `m` with N destinations and retention_last $2.
manager_config() {
    local n=$1 keep=$2 i list=
    {
        printf '[global]\nrestic_password_file = "%s"\nhost = "%s"\nstate_directory = "%s/state"\nlog_directory = "%s/state/logs"\nretention_last = %s\nretention_max_remove_percent = 100\nprune = "never"\n\n' \
            "$PW" "$HOST" "$J" "$J" "$keep"
        for i in $(seq 1 "$n"); do
            printf '[destinations.d%s]\ntype = "local"\npath = "%s/m/d%s"\n\n' "$i" "$J" "$i"
            list="$list${list:+, }\"d$i\""
        done
        printf '[services.%s]\ntargets = [%s]\n[services.%s.config]\npaths = ["%s"]\n' \
            "$SERVICE" "$list" "$SERVICE" "$TREE"
    } >"$J/m.toml"
}

# Bare restic, sequential: backup then forget on each repository.
bare_job() {
    local n=$1 keep=$2 i
    for i in $(seq 1 "$n"); do
        bare_backup_to "$J/b/d$i/$SERVICE" "$J/cache-b" >/dev/null
        restic_on "$J/b/d$i/$SERVICE" "$J/cache-b" forget --json --host "$HOST" \
            --tag "service:$SERVICE" --group-by host,tags --keep-last "$keep" >/dev/null
    done
}

manager_job() {
    XDG_CACHE_HOME=$J/cache-m "$RM_BIN" --config "$J/m.toml" --json run --service "$SERVICE"
}

# paired LABEL MANAGER BARE [ARGS...]: REPS rounds, alternating which side
# goes first, both sides called with ARGS; logs $LOGS/LABEL-mI.json and
# $LOGS/LABEL-bI.log. Sets P_M and P_B (medians of wall time), P_RR (the
# median of the rounds' own ratios: drift of the machine between rounds
# cancels out of it) and P_LOAD.
paired() {
    local label=$1 mfn=$2 bfn=$3 i ms=() bs=() rs=()
    shift 3
    load_mark "$label"
    for i in $(seq 1 "$REPS"); do
        if ((i % 2)); then
            timed "$LOGS/$label-m$i.json" "$mfn" "$@"
            ms+=("$ELAPSED")
            timed "$LOGS/$label-b$i.log" "$bfn" "$@"
            bs+=("$ELAPSED")
        else
            timed "$LOGS/$label-b$i.log" "$bfn" "$@"
            bs+=("$ELAPSED")
            timed "$LOGS/$label-m$i.json" "$mfn" "$@"
            ms+=("$ELAPSED")
        fi
    done
    load_since "$label" P_LOAD
    for i in "${!ms[@]}"; do rs+=("$(ratio "${ms[$i]}" "${bs[$i]}")"); done
    P_RR=$(median "${rs[@]}")
    P_M=$(median "${ms[@]}")
    P_B=$(median "${bs[@]}")
}

# Fresh repositories for both sides, two untimed runs each (initial and
# warm-up), then REPS paired rounds. Sets R_M, R_B (medians) and R_LOAD.
measure_run() {
    local n=$1 keep=$2 label=$3 i side
    rm -rf "$J/m" "$J/b" "$J/cache-m" "$J/cache-b" "$J/state"
    for side in m b; do
        for i in $(seq 1 "$n"); do
            mkdir -p "$J/$side/d$i"
            cp -a "$J/template" "$J/$side/d$i/$SERVICE"
        done
    done
    manager_config "$n" "$keep"
    for i in 1 2 3; do
        timed "$LOGS/$label-m-warm$i.json" manager_job
        timed "$LOGS/$label-b-warm$i.log" bare_job "$n" "$keep"
    done
    # manager_job ignores the arguments bare_job needs.
    paired "$label" manager_job bare_job "$n" "$keep"
    R_M=$P_M R_B=$P_B R_RR=$P_RR R_LOAD=$P_LOAD
    check_same_snapshot "$J/m/d1/$SERVICE" "$J/cache-m" "$J/b/d1/$SERVICE" "$J/cache-b"
    local mc bc
    mc=$(snapshot_count "$J/m/d1/$SERVICE" "$J/cache-m")
    bc=$(snapshot_count "$J/b/d1/$SERVICE" "$J/cache-b")
    [[ $mc == "$bc" ]] || die "$label: the sides kept $mc and $bc snapshots"
    R_KEPT=$mc
}

# Sets V to the verdict of ratio $1 against target $2 and MISSED when it
# is missed (not in a command substitution: MISSED must reach the exit).
verdict() {
    local r=$1 target=$2
    if awk -v r="$r" -v t="$target" 'BEGIN { exit !(r <= t) }'; then
        V="met (<= $target)"
    else
        MISSED=1
        V="MISSED (target <= $target)"
    fi
}

say "| case | restic-manager | bare restic | ratio | verdict |"
say "|---|---|---|---|---|"
for n in 3 1; do
    want "r$n" || continue
    for keep in "$KEEP_NOTHING_REMOVED" "$KEEP_REMOVING"; do
        case $keep in
            "$KEEP_NOTHING_REMOVED") what=keep ;;
            *) what=remove ;;
        esac
        label=r${n}_$what
        note "measuring $label ($n destination(s), retention_last = $keep)"
        measure_run "$n" "$keep" "$label"
        r=$(ratio "$R_M" "$R_B")
        v="-"
        if [[ $what == keep && $n == 3 ]]; then verdict "$r" 0.50 && v=$V; fi
        if [[ $what == keep && $n == 1 ]]; then verdict "$r" 1.03 && v=$V; fi
        say "| run, $n destination(s), retention_last = $keep ($what; $R_KEPT snapshots kept): run vs sequential backup + forget | ${R_M} s | ${R_B} s | ${r}x (rounds: ${R_RR}x) | $v |"
        LOADS+=("$label: $R_LOAD")
    done
done

# --- peak RSS of the manager during a run with retention -------------------------
if want rss; then

    note "measuring the manager's peak RSS during a 3-destination run"
    rm -rf "$J/m" "$J/state"
    for i in 1 2 3; do
        mkdir -p "$J/m/d$i"
        cp -a "$J/template" "$J/m/d$i/$SERVICE"
    done
    manager_config 3 "$KEEP_REMOVING"
    manager_job >"$LOGS/rss-warm.json" 2>&1
    manager_job >"$LOGS/rss-warm2.json" 2>&1
    XDG_CACHE_HOME=$J/cache-m "$RM_BIN" --config "$J/m.toml" --json run --service "$SERVICE" >"$LOGS/rss.json" 2>&1 &
    pid=$!
    peak=0
    while kill -0 "$pid" 2>/dev/null; do
        kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
        [[ -n $kb ]] && ((kb > peak)) && peak=$kb
        sleep 0.05
    done
    wait "$pid" || die "the RSS run failed (log: $LOGS/rss.json)"
    rss_mb=$(awk -v k="$peak" 'BEGIN { printf "%.1f", k / 1024 }')
    verdict "$rss_mb" 30
    v=$V
    say "| manager peak RSS (VmHWM) during run, 3 destinations, retention removing | ${rss_mb} MB | - | - | $v |"

fi

# --- validate of 1000 services ---------------------------------------------------
if want validate; then

    {
        printf '[global]\nrestic_password_file = "%s"\nstate_directory = "%s/state-v"\n\n' "$PW" "$J"
        printf '[destinations.d1]\ntype = "local"\npath = "%s/v"\n\n' "$J"
        for i in $(seq -w 1 1000); do
            printf '[services.s%s]\ntargets = ["d1"]\nretention_last = 7\n[services.s%s.config]\npaths = ["%s"]\n\n' "$i" "$i" "$TREE"
        done
    } >"$J/v.toml"
    vs=()
    for i in $(seq 1 "$REPS"); do
        timed "$LOGS/validate$i.log" "$RM_BIN" --config "$J/v.toml" validate
        vs+=("$ELAPSED")
    done
    vm=$(awk -v s="$(median "${vs[@]}")" 'BEGIN { printf "%.0f", s * 1000 }')
    verdict "$vm" 100
    v=$V
    say "| validate, 1000 services | ${vm} ms | - | - | $v |"

fi

# --- restore drill ---------------------------------------------------------------
if want drill; then

    note "measuring the restore drill ($DRILL_FILES files)"
    rm -rf "$J/m" "$J/b" "$J/state" "$J/cache-m" "$J/cache-b"
    mkdir -p "$J/m/d1"
    cp -a "$J/template" "$J/m/d1/$SERVICE"
    manager_config 1 "$KEEP_NOTHING_REMOVED"
    printf 'drill_sample_files = %s\n' "$DRILL_FILES" >>"$J/m.toml"
    # The key must sit under [services.bench]: rewrite the table order.
    awk -v k="drill_sample_files = $DRILL_FILES" '
        /^drill_sample_files/ { next }
        { print }
        /^targets = / { print k }' "$J/m.toml" >"$J/m.toml.new" && mv "$J/m.toml.new" "$J/m.toml"
    manager_job >"$LOGS/drill-backup.json" 2>&1 || die "backup for the drill failed"
    mkdir -p "$J/b"
    cp -a "$J/m/d1/$SERVICE" "$J/b/repo"
    drill_manager() {
        XDG_CACHE_HOME=$J/cache-m "$RM_BIN" --config "$J/m.toml" --json verify --drill --service "$SERVICE"
    }
    drill_bare() {
        local args=() f
        while read -r f; do args+=(--include "$TREE/$f"); done < <(grep -v '^#' "$BENCH_DIR/tree.manifest" | cut -f3 | shuf -n "$DRILL_FILES")
        rm -rf "$J/b-restore"
        restic_on "$J/b/repo" "$J/cache-b" check >/dev/null
        restic_on "$J/b/repo" "$J/cache-b" restore latest --no-lock --target "$J/b-restore" "${args[@]}" >/dev/null
        local got
        got=$(find "$J/b-restore" -type f | wc -l)
        [[ $got == "$DRILL_FILES" ]] || die "bare restore got $got files"
    }
    timed "$LOGS/drill-m-warm.json" drill_manager
    timed "$LOGS/drill-b-warm.log" drill_bare
    paired drill drill_manager drill_bare
    D_LOAD=$P_LOAD
    checked=$(grep -o '"files_checked": *[0-9]*' "$LOGS/drill-m1.json" | grep -o '[0-9]*$' || true)
    [[ $checked == "$DRILL_FILES" ]] || die "the drill checked ${checked:-no} files (log: $LOGS/drill-m1.json)"
    m=$P_M
    b=$P_B
    r=$(ratio "$m" "$b")
    verdict "$r" 1.5
    say "| verify --drill, 1 destination, $DRILL_FILES files vs check + one restore --include of $DRILL_FILES files | ${m} s | ${b} s | ${r}x | $V |"
    LOADS+=("drill: $D_LOAD")

    # --- browse a folder on the dashboard -------------------------------------------

    # The snapshot page of the drill's repository, opening the folder of the tree
    # with the most entries, against the one bare `restic ls --json SNAPSHOT DIR`
    # it stands for. Both read the same repository; neither takes a lock.
    note "measuring the dashboard's browse-a-folder page"
    BDIR=$(grep -v '^#' "$BENCH_DIR/tree.manifest" | cut -f3 | sed 's|/[^/]*$||' | sort | uniq -c | sort -rn | awk 'NR == 1 { print $2 }')
    BPATH=$TREE/$BDIR
    SNAP=$(restic_on "$J/m/d1/$SERVICE" "$J/cache-b" snapshots --json --no-lock latest |
        python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["id"])')
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    XDG_CACHE_HOME=$J/cache-m "$RM_BIN" --config "$J/m.toml" serve --listen "127.0.0.1:$PORT" 2>"$LOGS/serve.log" &
    SERVER=$!
    trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/login" >/dev/null && break
        sleep 0.1
    done
    TOKEN=$(cat "$J/state/web-token") || die "serve made no token (log: $LOGS/serve.log)"
    QPATH=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$BPATH")
    BURL="http://127.0.0.1:$PORT/services/$SERVICE/snapshots/$SNAP?destination=d1&path=$QPATH"
    BENTRIES=$(restic_on "$J/m/d1/$SERVICE" "$J/cache-b" ls --json --no-lock "$SNAP" "$BPATH" | grep -c '"struct_type":"node"' || true)
    browse_manager() {
        curl -fsS -H "Authorization: Bearer $TOKEN" "$BURL" | grep -q 'table class="files"'
    }
    browse_bare() {
        restic_on "$J/m/d1/$SERVICE" "$J/cache-b" ls --json --no-lock "$SNAP" "$BPATH" >/dev/null
    }
    timed "$LOGS/browse-m-warm.log" browse_manager || die "the snapshot page did not render (log: $LOGS/serve.log)"
    timed "$LOGS/browse-b-warm.log" browse_bare
    paired browse browse_manager browse_bare
    B_LOAD=$P_LOAD
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    trap - EXIT
    m=$P_M
    b=$P_B
    r=$(ratio "$m" "$b")
    say "| dashboard snapshot page, one folder ($BENTRIES lines of ls output) vs bare ls --json of that folder | ${m} s | ${b} s | ${r}x | - |"
    LOADS+=("browse: $B_LOAD")

fi

# --- status --live ---------------------------------------------------------------
if want live; then

    note "measuring status --live (10 services x 3 destinations)"
    rm -rf "$J/live" "$J/cache-live-m" "$J/cache-live-b"
    # One small snapshot carrying every service's tag, copied to 30 repositories.
    mkdir -p "$J/live-src"
    echo data >"$J/live-src/f"
    tags=()
    for s in $(seq -w 1 10); do tags+=(--tag "service:svc$s"); done
    cp -a "$J/template" "$J/live-template"
    restic_on "$J/live-template" "$J/cache-init" backup --quiet --host "$HOST" "${tags[@]}" -- "$J/live-src" >/dev/null
    {
        printf '[global]\nrestic_password_file = "%s"\nhost = "%s"\nstate_directory = "%s/state-live"\n\n' "$PW" "$HOST" "$J"
        for d in local nas offsite; do
            printf '[destinations.%s]\ntype = "local"\npath = "%s/live/%s"\n\n' "$d" "$J" "$d"
        done
        for s in $(seq -w 1 10); do
            printf '[services.svc%s]\ntargets = ["local", "nas", "offsite"]\n[services.svc%s.config]\npaths = ["%s/live-src"]\n\n' "$s" "$s" "$J"
            for d in local nas offsite; do
                mkdir -p "$J/live/$d"
                cp -a "$J/live-template" "$J/live/$d/svc$s"
            done
        done
    } >"$J/live.toml"
    live_manager() {
        local rc=0
        XDG_CACHE_HOME=$J/cache-live-m "$RM_BIN" --config "$J/live.toml" --json status --live || rc=$?
        # Health exit codes (never backed up: not ok) are not errors here.
        ((rc <= 3))
    }
    live_bare() {
        local d s
        for s in $(seq -w 1 10); do
            for d in local nas offsite; do
                restic_on "$J/live/$d/svc$s" "$J/cache-live-b" snapshots --json --no-lock --tag "service:svc$s" >/dev/null
            done
        done
    }
    timed "$LOGS/live-m-warm.json" live_manager
    timed "$LOGS/live-b-warm.log" live_bare
    paired live live_manager live_bare
    L_LOAD=$P_LOAD
    m=$P_M
    b=$P_B
    r=$(ratio "$m" "$b")
    verdict "$r" 1.2
    say "| status --live, 10 services x 3 destinations vs 30 sequential snapshots --json | ${m} s | ${b} s | ${r}x | $V |"
    LOADS+=("status --live: $L_LOAD")

fi

say ""
say "Key of every repository: $KDF. Machine load while measuring:"
for l in "${LOADS[@]}"; do say "- $l"; done

if ((WRITE_RESULTS)); then
    write_results "$(results_heading)" "$(results_preamble)
- paired rounds per case: $REPS (medians of wall time), sides alternating which goes first

$(printf '%s\n' "${OUT[@]}")"
fi
exit $((MISSED ? 3 : 0))

#!/usr/bin/env bash
# Measures restic-manager's fan-out to several destinations (issue 4,
# "Performance"): one service, three local destinations, the tree of
# overhead.sh (bench/lib.sh), one run on one machine.
#
# (a) Incremental backup with no change: `restic-manager run` with
#     replication = "parallel" against a bare script that runs `restic backup`
#     (called as src/restic/ops.rs calls it) to the three repositories one
#     after another. Target: manager/sequential <= 0.50 (the peer runrestic
#     measured 0.54). A bare script that starts the three at once (`&` and
#     `wait`) is timed too: it is the floor this machine allows.
# (b) replication = "copy" against "parallel", same job, initial (fresh
#     repositories) and incremental after changing 1 % of the files: wall
#     time, the time until the primary (first) target's snapshot exists
#     (`primary_snapshot_ms` of `run --json`), and the time between the end
#     of the pre-backup hook and the start of the post-backup hook, which is
#     how long containers stopped by such hooks would stay down.
#
# Prints medians over REPS repetitions; exit 0 when (a) meets its target.
#
# Usage: bench/fanout.sh [--write-results] [--help]
# Environment:
#   REPS       repetitions per case (default 5)
#   BENCH_DIR  work directory (default bench/work, gitignored; this script
#              uses its fanout/ folder and the shared tree)
#   RM_BIN     restic-manager binary to measure (default: cargo build --release)
#   RM_COMMIT  git revision RM_BIN was built from, for RESULTS.md (default HEAD)
#   RESTIC     restic binary (default: `restic` on PATH)
#   RETENTION_LAST  the retention variant: every side keeps the last N
#              snapshots (`retention_last = N`, `prune = "never"` for the
#              manager; `forget --keep-last N` after each bare backup, as
#              ops.rs calls it). Unset (the default): no retention, as in
#              issue 4. bench/job.sh measures retention in more cases.
# Needs jq. Exit: 0 target met, 3 target missed, 1 error (a run failed, ...).
set -euo pipefail

BENCH_NAME=fanout.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET_RATIO=0.50
DESTS=(d1 d2 d3)
# Share of the files changed before each incremental run of (b), in percent.
CHANGE_PERCENT=1

parse_common_args "$@"
[[ -n ${RETENTION_LAST:-} ]] && COMMAND_LINE="RETENTION_LAST=$RETENTION_LAST $COMMAND_LINE"
# Snapshots each repository holds after a case: one per run (REPS, a
# warm-up and the initial), or what retention keeps of them.
WANT_SNAPSHOTS=$((REPS + 2))
if [[ -n ${RETENTION_LAST:-} ]] && ((RETENTION_LAST < WANT_SNAPSHOTS)); then
    WANT_SNAPSHOTS=$RETENTION_LAST
fi
command -v jq >/dev/null || die "jq not found; install it (apt-get install jq)"
locate_binaries
setup_env
build_tree

F=$BENCH_DIR/fanout
LOGS=$F/logs
TEMPLATES=$BENCH_DIR/fanout-templates
rm -rf "$F"
mkdir -p "$LOGS"

# (b) changes files, so this script backs up its own copy of the shared tree
# (which overhead.sh needs unchanged): same files, sizes and directories.
note "copying the tree to $F/tree"
cp -a "$TREE" "$F/tree"
TREE=$F/tree
tree_stats
NCHANGE=$((TREE_FILES * CHANGE_PERCENT / 100))

# --- repositories -----------------------------------------------------------

# Each side of a comparison gets copies of one set of three empty
# repositories, so that every side pays the same key derivation: `restic
# init` calibrates the key's scrypt cost to the load of the moment (setup
# made p=3, p=4 and p=5 for three repositories in a row here; a key made
# while other sessions kept the machine busy got p=1), and every restic
# command pays it again: 0.15 to 0.7 s of CPU. d2 and d3 are created as
# `setup` does for replication = "copy", with d1's chunker parameters, and
# re-created (up to 10 times) until their key costs what d1's does. The set
# is kept in $BENCH_DIR/fanout-templates and reused by later runs, so their
# figures stay comparable; delete it on an idle machine to make a new one.
# Sides share repository IDs, so each side has its own restic cache.
make_templates() {
    local d try kdf
    if [[ -f $TEMPLATES/complete ]] &&
        restic_on "$TEMPLATES/d1" "$F/cache-init" cat config --no-lock >/dev/null 2>&1; then
        TEMPLATES_NOTE="kept from $(cat "$TEMPLATES/complete")"
    else
        note "creating the template repositories (not timed)"
        rm -rf "$TEMPLATES"
        mkdir -p "$TEMPLATES"
        restic_on "$TEMPLATES/d1" "$F/cache-init" init >"$LOGS/init-d1.log" 2>&1 ||
            { cat "$LOGS/init-d1.log" >&2; die "restic init $TEMPLATES/d1 failed"; }
        for d in "${DESTS[@]:1}"; do
            for ((try = 1; try <= 10; try++)); do
                rm -rf "${TEMPLATES:?}/$d"
                RESTIC_FROM_REPOSITORY=$TEMPLATES/d1 RESTIC_FROM_PASSWORD_FILE=$PW \
                    restic_on "$TEMPLATES/$d" "$F/cache-init" init --copy-chunker-params >"$LOGS/init-$d.log" 2>&1 ||
                    { cat "$LOGS/init-$d.log" >&2; die "restic init $TEMPLATES/$d failed"; }
                kdf=$(kdf_of "$TEMPLATES/$d")
                [[ $kdf == "$(kdf_of "$TEMPLATES/d1")" ]] && break
            done
        done
        printf '%s, load average %s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$TEMPLATES/complete"
        TEMPLATES_NOTE="made $(cat "$TEMPLATES/complete")"
    fi
    rm -rf "$F/cache-init"
    KDFS=
    for d in "${DESTS[@]}"; do
        kdf=$(kdf_of "$TEMPLATES/$d")
        KDFS="${KDFS:+$KDFS, }$d $kdf"
        [[ $kdf == "$(kdf_of "$TEMPLATES/d1")" ]] || note "warning: $d's key costs differ from d1's ($kdf)"
    done
}

# Fresh copies of the template repositories for side $1, empty cache.
fresh_set() {
    local side=$1 d
    rm -rf "${F:?}/$side"
    for d in "${DESTS[@]}"; do
        mkdir -p "$F/$side/$d"
        cp -a "$TEMPLATES/$d" "$F/$side/$d/$SERVICE"
    done
    mkdir -p "$F/$side/cache" "$F/$side/state"
}

repo_of() { printf '%s' "$F/$1/$2/$SERVICE"; }

# --- the sides ----------------------------------------------------------------

# One bare backup of side $1 to destination $2, then, in the retention
# variant, the `forget` the manager's policy stands for.
bare_job_to() {
    bare_backup_to "$(repo_of "$1" "$2")" "$F/$1/cache" || return
    [[ -z ${RETENTION_LAST:-} ]] && return
    restic_on "$(repo_of "$1" "$2")" "$F/$1/cache" forget --json --host "$HOST" \
        --tag "service:$SERVICE" --group-by host,tags --keep-last "$RETENTION_LAST" >/dev/null
}

# Writes side $1's configuration: replication $2; with $3 = hooks, a pre- and
# a post-backup hook that note the time (as `docker compose stop`/`start`
# would run there).
write_config() {
    local side=$1 replication=$2 hooks=${3:-} d
    {
        printf '# Written by bench/fanout.sh: three local destinations, %s.\n' \
            "${RETENTION_LAST:+retention_last = $RETENTION_LAST}${RETENTION_LAST:-no retention}"
        printf '[global]\nrestic_password_file = "%s"\nstate_directory = "%s"\n' "$PW" "$F/$side/state"
        if [[ -n ${RETENTION_LAST:-} ]]; then
            printf 'retention_last = %s\nretention_max_remove_percent = 100\nprune = "never"\n' "$RETENTION_LAST"
        fi
        printf 'lock_directory = "%s"\nrestic_binary = "%s"\nhost = "%s"\n' "$F/$side/lock" "$RESTIC" "$HOST"
        for d in "${DESTS[@]}"; do
            printf '\n[destinations.%s]\ntype = "local"\npath = "%s"\n' "$d" "$F/$side/$d"
        done
        printf '\n[services.%s]\ntargets = [%s]\nreplication = "%s"\n' "$SERVICE" \
            "$(printf '"%s", ' "${DESTS[@]}" | sed 's/, $//')" "$replication"
        printf '\n[services.%s.config]\npaths = ["%s"]\n' "$SERVICE" "$TREE"
        if [[ $hooks == hooks ]]; then
            printf '\n[[services.%s.config.pre_backup_hooks]]\nname = "stop"\n' "$SERVICE"
            printf "command = \"date +%%s.%%N >'%s'\"\n" "$F/$side/hook-pre"
            printf '\n[[services.%s.config.post_backup_hooks]]\nname = "start"\n' "$SERVICE"
            printf "command = \"date +%%s.%%N >'%s'\"\n" "$F/$side/hook-post"
        fi
    } >"$F/$side.toml"
    "$RM_BIN" --config "$F/$side.toml" validate >"$LOGS/validate-$side.log" 2>&1 ||
        { cat "$LOGS/validate-$side.log" >&2; die "restic-manager validate failed on $F/$side.toml"; }
}

# `restic-manager run` for side $1; its JSON goes to $2, the rest to the log
# `timed` gives it, and on failure also what went wrong per target.
manager_run() {
    local rc=0
    rm -f "$F/$1/hook-pre" "$F/$1/hook-post"
    XDG_CACHE_HOME=$F/$1/cache "$RM_BIN" --config "$F/$1.toml" --json run --service "$SERVICE" >"$2" || rc=$?
    if ((rc != 0)); then
        jq -c '.services[] | {service, error}, (.targets[] | {destination, method, outcome, error})' "$2" >&2 ||
            cat "$2" >&2
    fi
    return "$rc"
}

# The bare scripts: `restic backup` exactly as ops.rs runs it, to each
# repository of side $1, one after another or all at once. Each call prints
# `call DEST START END`. errexit does not apply inside functions that
# `timed` runs, hence the explicit returns.
bare_sequential() {
    local side=$1 d t0
    for d in "${DESTS[@]}"; do
        t0=$EPOCHREALTIME
        bare_job_to "$side" "$d" || return
        printf 'call %s %s %s\n' "$d" "$t0" "$EPOCHREALTIME"
    done
}

bare_parallel() {
    local side=$1 d pids=() p rc=0
    for d in "${DESTS[@]}"; do
        (
            t0=$EPOCHREALTIME
            bare_job_to "$side" "$d" || exit
            printf 'call %s %s %s\n' "$d" "$t0" "$EPOCHREALTIME"
        ) &
        pids+=("$!")
    done
    for p in "${pids[@]}"; do
        wait "$p" || rc=$?
    done
    return "$rc"
}

# --- samples ------------------------------------------------------------------

# SAMPLES[key] is a space-separated list of seconds; keys are
# CASE/SIDE/FIGURE, e.g. a/seq/wall or incr/copy/d2.
declare -A SAMPLES=() METHOD=()
add() { SAMPLES[$1]+="${SAMPLES[$1]:+ }$2"; }
med() {
    local -a v
    read -ra v <<<"${SAMPLES[$1]:-}"
    if ((${#v[@]})); then median "${v[@]}"; else printf 'n/a'; fi
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Per-call times of a bare script's log ($2) under key prefix $1.
record_calls() {
    local key=$1 tag d t0 t1
    while read -r tag d t0 t1; do
        [[ $tag == call ]] && add "$key/$d" "$(secs "$t0" "$t1")"
    done <"$2"
}

# Figures of a manager run ($2, its JSON) under key prefix $1; with $3, the
# number of changed files every backup target must have seen.
record_manager() {
    local key=$1 json=$2 want=${3:-} side=${1#*/} primary d method ms changed pre post
    jq -e '.outcome == "ok" and (.services | length) == 1' "$json" >/dev/null ||
        die "unexpected \`run --json\` output in $json"
    primary=$(jq -r '.services[0].primary_snapshot_ms // empty' "$json")
    [[ -n $primary ]] || die "no primary_snapshot_ms in $json"
    add "$key/primary" "$(awk -v m="$primary" 'BEGIN { printf "%.3f", m / 1000 }')"
    while read -r d method ms changed; do
        add "$key/$d" "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
        METHOD[$key/$d]=$method
        if [[ -n $want && $method == backup && $changed != "$want" ]]; then
            die "$d saw $changed changed files, expected $want ($json)"
        fi
    done < <(jq -r '.services[0].targets[] | "\(.destination) \(.method) \(.duration_ms) \(.files_changed)"' "$json")
    if [[ -f $F/$side/hook-pre || -f $F/$side/hook-post ]]; then
        read -r pre <"$F/$side/hook-pre" || die "pre-backup hook of $side left no time"
        read -r post <"$F/$side/hook-post" || die "post-backup hook of $side left no time"
        add "$key/window" "$(secs "$pre" "$post")"
    fi
}

# Changes NCHANGE files of the tree for round $1: every 100/CHANGE_PERCENT-th
# file of the manifest (text and binaries, small and large, in the tree's
# proportions), offset by the round. The first 64 bytes are overwritten in
# place, so sizes stay the same and restic must read each file again.
CHANGED_BYTES=0
change_files() {
    local round=$1 step=$((100 / CHANGE_PERCENT)) i=0 n=0 kind size path
    CHANGED_BYTES=0
    while IFS=$'\t' read -r kind size path; do
        [[ $kind == "#"* ]] && continue
        if (((i - round * 37) % step == 0 && n < NCHANGE)); then
            printf '%-63s\n' "fanout.sh round $round $EPOCHREALTIME" 1<>"$TREE/$path"
            CHANGED_BYTES=$((CHANGED_BYTES + size))
            n=$((n + 1))
        fi
        i=$((i + 1))
    done <"$BENCH_DIR/tree.manifest"
    ((n == NCHANGE)) || die "changed $n files, wanted $NCHANGE"
}

# --- (a) parallel against sequential, incremental with no change ---------------

make_templates
note "repository keys: scrypt $KDFS (template set $TEMPLATES_NOTE)"

A_SIDES=(seq par bpar)
write_config par parallel
for side in "${A_SIDES[@]}"; do fresh_set "$side"; done
note "(a) initial backups of each side (not timed), then one warm-up each"
for phase in initial warmup; do
    timed "$LOGS/a-$phase-seq.log" bare_sequential seq
    timed "$LOGS/a-$phase-par.log" manager_run par "$LOGS/a-$phase-par.json"
    timed "$LOGS/a-$phase-bpar.log" bare_parallel bpar
done

note "(a) incremental with no change, $REPS repetitions"
load_mark a
declare -a PAIR_RATIO=()
declare -A LAST=()
for ((rep = 1; rep <= REPS; rep++)); do
    line="  $rep/$REPS:"
    for ((k = 0; k < ${#A_SIDES[@]}; k++)); do
        side=${A_SIDES[(k + rep) % ${#A_SIDES[@]}]}
        log=$LOGS/a-$rep-$side.log
        case $side in
            seq) timed "$log" bare_sequential seq && record_calls a/seq "$log" ;;
            bpar) timed "$log" bare_parallel bpar && record_calls a/bpar "$log" ;;
            par) timed "$log" manager_run par "$LOGS/a-$rep-par.json" && record_manager a/par "$LOGS/a-$rep-par.json" ;;
        esac
        add "a/$side/wall" "$ELAPSED"
        add "a/$side/cpu" "$CPU"
        LAST[$side]=$ELAPSED
        line="$line $side ${ELAPSED}s (CPU ${CPU}s)"
    done
    PAIR_RATIO+=("$(ratio "${LAST[par]}" "${LAST[seq]}")")
    note "$line"
done

# 1 initial + 1 warm-up + REPS snapshots everywhere, and bare restic made the
# same snapshot as restic-manager.
for side in "${A_SIDES[@]}"; do
    for d in "${DESTS[@]}"; do
        n=$(snapshot_count "$(repo_of "$side" "$d")" "$F/$side/cache")
        ((n == WANT_SNAPSHOTS)) || die "$(repo_of "$side" "$d") has $n snapshots, expected $WANT_SNAPSHOTS"
    done
done
check_same_snapshot "$(repo_of seq d1)" "$F/seq/cache" "$(repo_of par d1)" "$F/par/cache"
load_since a LOAD_A
rm -rf "${F:?}/seq" "${F:?}/bpar" "${F:?}/par"

# --- (b) copy against parallel ----------------------------------------------------

B_MODES=(parallel copy)
for mode in "${B_MODES[@]}"; do write_config "$mode" "$mode" hooks; done

load_mark init
note "(b) initial backups, $REPS repetitions (fresh repositories and caches each)"
for ((rep = 1; rep <= REPS; rep++)); do
    line="  $rep/$REPS:"
    for ((k = 0; k < 2; k++)); do
        mode=${B_MODES[(k + rep) % 2]}
        fresh_set "$mode"
        timed "$LOGS/init-$rep-$mode.log" manager_run "$mode" "$LOGS/init-$rep-$mode.json"
        record_manager "init/$mode" "$LOGS/init-$rep-$mode.json"
        add "init/$mode/wall" "$ELAPSED"
        add "init/$mode/cpu" "$CPU"
        line="$line $mode ${ELAPSED}s"
    done
    note "$line"
done
load_since init LOAD_INIT

note "(b) incremental with $NCHANGE files ($CHANGE_PERCENT %) changed, $REPS repetitions after one warm-up each"
for mode in "${B_MODES[@]}"; do
    timed "$LOGS/incr-warmup-$mode.log" manager_run "$mode" "$LOGS/incr-warmup-$mode.json"
done
declare -a CHANGED_MB=()
load_mark incr
for ((rep = 1; rep <= REPS; rep++)); do
    change_files "$rep"
    CHANGED_MB+=("$(mb "$CHANGED_BYTES")")
    line="  $rep/$REPS ($(mb "$CHANGED_BYTES") MB in changed files):"
    for ((k = 0; k < 2; k++)); do
        mode=${B_MODES[(k + rep) % 2]}
        timed "$LOGS/incr-$rep-$mode.log" manager_run "$mode" "$LOGS/incr-$rep-$mode.json"
        record_manager "incr/$mode" "$LOGS/incr-$rep-$mode.json" "$NCHANGE"
        add "incr/$mode/wall" "$ELAPSED"
        add "incr/$mode/cpu" "$CPU"
        line="$line $mode ${ELAPSED}s"
    done
    note "$line"
done

# Every repository holds the last initial snapshot, the warm-up's and one per
# repetition; with replication = "copy", d2's and d3's are copies.
for mode in "${B_MODES[@]}"; do
    for d in "${DESTS[@]}"; do
        n=$(snapshot_count "$(repo_of "$mode" "$d")" "$F/$mode/cache")
        ((n == WANT_SNAPSHOTS)) || die "$(repo_of "$mode" "$d") has $n snapshots, expected $WANT_SNAPSHOTS"
    done
done
for d in "${DESTS[@]:1}"; do
    restic_on "$(repo_of copy "$d")" "$F/copy/cache" snapshots --json --no-lock --latest 1 | grep -q '"original"' ||
        die "the newest snapshot in $(repo_of copy "$d") is not a copy"
done
load_since incr LOAD_INCR

# --- report -------------------------------------------------------------------

M_SEQ=$(med a/seq/wall)
M_PAR=$(med a/par/wall)
M_BPAR=$(med a/bpar/wall)
R_PAR=$(ratio "$M_PAR" "$M_SEQ")
R_BPAR=$(ratio "$M_BPAR" "$M_SEQ")
P_RATIO=$(median "${PAIR_RATIO[@]}")
if awk -v r="$R_PAR" -v t="$TARGET_RATIO" 'BEGIN { exit !(r <= t) }'; then
    VERDICT=PASS
else
    VERDICT=FAIL
fi
NCPU=$(nproc)

# Medians per target of key prefix $1, e.g. `d1 1.02, d2 1.10, d3 0.98`,
# with the method when $2 is set.
per_target() {
    local key=$1 d out=()
    for d in "${DESTS[@]}"; do
        out+=("$d ${2:+${METHOD[$key/$d]:-?} }$(med "$key/$d")")
    done
    local IFS=,
    printf '%s' "${out[*]}" | sed 's/,/, /g'
}

table_a() {
    printf '| incremental, no change, 3 destinations | wall (s) | CPU (s) | wall / sequential | per repository (s) |\n'
    printf '|---|---:|---:|---:|---|\n'
    printf '| bare restic, sequential script | %s | %s | 1.000 | %s |\n' "$M_SEQ" "$(med a/seq/cpu)" "$(per_target a/seq)"
    printf '| restic-manager, replication = "parallel" | %s | %s | **%s** | %s |\n' "$M_PAR" "$(med a/par/cpu)" "$R_PAR" "$(per_target a/par)"
    # Backticks here are Markdown, not command substitution.
    # shellcheck disable=SC2016
    printf '| bare restic, all three at once (`&`, `wait`) | %s | %s | %s | %s |\n' "$M_BPAR" "$(med a/bpar/cpu)" "$R_BPAR" "$(per_target a/bpar)"
}

table_b() {
    local c m label
    printf '| case | replication | wall (s) | CPU (s) | primary snapshot (s) | pre→post hook window (s) | per target (s) |\n'
    printf '|---|---|---:|---:|---:|---:|---|\n'
    for c in init incr; do
        if [[ $c == init ]]; then label='initial'; else label="incremental, $CHANGE_PERCENT % of files changed"; fi
        for m in "${B_MODES[@]}"; do
            printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$m" "$(med "$c/$m/wall")" "$(med "$c/$m/cpu")" \
                "$(med "$c/$m/primary")" "$(med "$c/$m/window")" "$(per_target "$c/$m" method)"
        done
    done
}

summary() {
    printf '(a) restic-manager (parallel) / bare sequential: %s (median of paired ratios %s); ' "$R_PAR" "$P_RATIO"
    printf 'bare all-at-once / sequential: %s.\n' "$R_BPAR"
    printf 'On %s CPUs a run cannot take less than its CPU time / %s: %s s for the manager run.\n' \
        "$NCPU" "$NCPU" "$(awk -v c="$(med a/par/cpu)" -v n="$NCPU" 'BEGIN { printf "%.3f", c / n }')"
    printf 'target: parallel/sequential <= %s: %s (%s)\n' "$TARGET_RATIO" "$VERDICT" "$R_PAR"
}

load_lines() {
    printf -- '- machine load during (a): %s\n' "$LOAD_A"
    printf -- '- machine load during (b), initial: %s\n' "$LOAD_INIT"
    printf -- '- machine load during (b), incremental: %s\n' "$LOAD_INCR"
}

printf '\nmedians of %s repetitions, %s files, %s MB, 3 local destinations\n\n' "$REPS" "$TREE_FILES" "$(mb "$TREE_BYTES")"
table_a
printf '\n'
table_b
printf '\n'
summary
printf 'incremental (b): %s files changed per repetition, %s MB in them (median)\n' "$NCHANGE" "$(median "${CHANGED_MB[@]}")"
printf 'repository keys: scrypt %s\n' "$KDFS"
load_lines | sed 's/^- //'

# --- RESULTS.md -----------------------------------------------------------------

if ((WRITE_RESULTS)); then
    section=$(
        results_preamble
        printf -- '- repository keys: scrypt %s (one template set, %s, copied to every side)\n' "$KDFS" "$TEMPLATES_NOTE"
        load_lines
        printf '\n'
        table_a
        printf '\n'
        summary | sed -e 's/^target: \(.*\): \(PASS\|FAIL\) /target \1: **\2** /' -e 's/^/- /'
        printf '\n'
        table_b
        printf '\n(b) changed %s files (%s %%) before each incremental repetition, %s MB in them (median). ' \
            "$NCHANGE" "$CHANGE_PERCENT" "$(median "${CHANGED_MB[@]}")"
        printf 'The primary is d1, the first target, in both modes; the hook window runs from the end of the '
        printf 'pre-backup hook to the start of the post-backup hook.\n\n'
        printf 'Samples (s):\n\n'
        for key in $(printf '%s\n' "${!SAMPLES[@]}" | sort); do
            printf -- '- %s: %s\n' "$key" "${SAMPLES[$key]}"
        done
    )
    write_results "$(results_heading)${RETENTION_LAST:+ (RETENTION_LAST=$RETENTION_LAST)}" "$section"
fi

[[ $VERDICT == PASS ]] || exit 3

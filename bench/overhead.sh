#!/usr/bin/env bash
# Measures restic-manager's overhead over bare restic (issue 3, "Performance").
#
# One run, same machine, same tree: `restic backup` called exactly as
# restic-manager calls it (src/restic/ops.rs `backup`) against
# `restic-manager run --service bench`, initial (fresh repository each
# repetition, `init` not timed) and incremental with no change. Prints the
# medians and the ratios manager/bare; the target is an incremental ratio of
# at most 1.03.
#
# Usage: bench/overhead.sh [--write-results] [--help]
# Environment:
#   REPS       repetitions per case (default 5)
#   BENCH_DIR  work directory (default bench/work, gitignored)
#   RM_BIN     restic-manager binary to measure (default: cargo build --release)
#   RM_COMMIT  git revision RM_BIN was built from, for RESULTS.md (default HEAD)
#   RESTIC     restic binary (default: `restic` on PATH)
# Exit: 0 target met, 3 target missed, 1 error (a backup failed, ...).
set -euo pipefail

BENCH_NAME=overhead.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET_RATIO=1.03

parse_common_args "$@"
locate_binaries
setup_env

BARE_REPO=$BENCH_DIR/bare/repos/$SERVICE
MGR_REPOS=$BENCH_DIR/manager/repos
MGR_REPO=$MGR_REPOS/$SERVICE
MGR_STATE=$BENCH_DIR/manager/state
CONFIG=$BENCH_DIR/manager/config.toml
LOGS=$BENCH_DIR/logs
# One restic cache per side: the two repositories are copies of one
# template and share a repository ID, hence a cache name.
CACHE_BARE=$BENCH_DIR/cache/bare
CACHE_MGR=$BENCH_DIR/cache/manager
TEMPLATE_REPO=$BENCH_DIR/template-repo
mkdir -p "$LOGS" "$MGR_STATE" "$(dirname "$BARE_REPO")" "$MGR_REPOS"

build_tree
tree_stats

# --- restic-manager's configuration -------------------------------------------

cat >"$CONFIG" <<EOF
# Written by bench/overhead.sh: no hooks, no retention.
[global]
restic_password_file = "$PW"
state_directory = "$MGR_STATE"
restic_binary = "$RESTIC"
host = "$HOST"

[destinations.local]
type = "local"
path = "$MGR_REPOS"

[services.$SERVICE]
targets = ["local"]

[services.$SERVICE.config]
paths = ["$TREE"]
EOF
"$RM_BIN" --config "$CONFIG" validate >"$LOGS/validate.log" 2>&1 ||
    { cat "$LOGS/validate.log" >&2; die "restic-manager validate failed on $CONFIG"; }

# --- measuring ------------------------------------------------------------------

# `restic init` calibrates the key's scrypt cost to the machine's load at
# that moment, and every later command pays it again when it opens the key
# (here 0.1 s apart between two inits a minute apart: p=4 against p=5). Two
# separately initialised repositories would make the ratio measure that
# lottery, so both sides get a copy of one repository initialised once per
# benchmark run, and an empty cache, before each initial backup.
init_template() {
    rm -rf "$TEMPLATE_REPO"
    RESTIC_REPOSITORY=$TEMPLATE_REPO RESTIC_PASSWORD_FILE=$PW "$RESTIC" init >"$LOGS/init.log" 2>&1 ||
        { cat "$LOGS/init.log" >&2; die "restic init $TEMPLATE_REPO failed"; }
    KDF=$(kdf_of "$TEMPLATE_REPO")
}

fresh_repo() {
    rm -rf "$1" "$2"
    cp -a "$TEMPLATE_REPO" "$1"
}

# Exactly what src/restic/ops.rs `backup` runs (see lib.sh).
bare_backup() {
    bare_backup_to "$BARE_REPO" "$CACHE_BARE"
}

# `--json` only changes what restic-manager prints; it lets us read how long
# its restic backup call took, so wall time minus that is restic-manager's
# own time, free of restic's run-to-run noise.
manager_run() {
    XDG_CACHE_HOME=$CACHE_MGR "$RM_BIN" --config "$CONFIG" --json run --service "$SERVICE"
}

# The target's duration_ms from `run --json` (the first one after "targets").
backup_ms() {
    tr ',{}[]' '\n' <"$1" | awk -F: '
        /"targets"/ { t = 1 }
        t && /"duration_ms"/ { gsub(/[^0-9]/, "", $2); print $2; exit }'
}

declare -a INIT_BARE=() INIT_MGR=() INCR_BARE=() INCR_MGR=() INCR_OWN=()

# Alternating which side goes first cancels slow drift (thermal, page cache).
one_pair() {
    local phase=$1 rep=$2 bare mgr
    if ((rep % 2)); then
        timed "$LOGS/$phase-bare-$rep.log" bare_backup
        bare=$ELAPSED
        timed "$LOGS/$phase-manager-$rep.log" manager_run
        mgr=$ELAPSED
    else
        timed "$LOGS/$phase-manager-$rep.log" manager_run
        mgr=$ELAPSED
        timed "$LOGS/$phase-bare-$rep.log" bare_backup
        bare=$ELAPSED
    fi
    note "  $phase $rep/$REPS: bare ${bare}s, manager ${mgr}s"
    if [[ $phase == initial ]]; then
        INIT_BARE+=("$bare")
        INIT_MGR+=("$mgr")
    else
        INCR_BARE+=("$bare")
        INCR_MGR+=("$mgr")
        local ms
        ms=$(backup_ms "$LOGS/$phase-manager-$rep.log")
        if [[ -n $ms ]]; then
            INCR_OWN+=("$(awk -v w="$mgr" -v b="$ms" 'BEGIN { printf "%.1f", w * 1000 - b }')")
        fi
    fi
}

load_mark run
init_template
note "repository key: scrypt $KDF (one template for both sides)"
note "initial backups ($REPS repetitions, fresh repositories and caches, init not timed)"
for ((rep = 1; rep <= REPS; rep++)); do
    fresh_repo "$BARE_REPO" "$CACHE_BARE"
    fresh_repo "$MGR_REPO" "$CACHE_MGR"
    one_pair initial "$rep"
done

note "incremental backups with no change ($REPS repetitions after one untimed warm-up each)"
timed "$LOGS/warmup-bare.log" bare_backup
timed "$LOGS/warmup-manager.log" manager_run
for ((rep = 1; rep <= REPS; rep++)); do
    one_pair incremental "$rep"
done

# Every backup must have produced a snapshot (1 initial + warm-up + REPS per
# repository), and the newest snapshots must agree on what restic was asked
# for (check_same_snapshot, lib.sh).
for side in bare manager; do
    if [[ $side == bare ]]; then repo=$BARE_REPO cache=$CACHE_BARE; else repo=$MGR_REPO cache=$CACHE_MGR; fi
    n=$(snapshot_count "$repo" "$cache")
    ((n == REPS + 2)) || die "$repo has $n snapshots, expected $((REPS + 2))"
done
check_same_snapshot "$BARE_REPO" "$CACHE_BARE" "$MGR_REPO" "$CACHE_MGR"

load_since run MACHINE_LOAD

# Per-pair figures: the two runs of a pair are seconds apart, so these are
# less exposed to drift than the ratio of medians (which decides the verdict).
pairs() {
    local i out=()
    for ((i = 0; i < REPS; i++)); do
        out+=("$(awk -v m="${INCR_MGR[i]}" -v b="${INCR_BARE[i]}" "BEGIN { printf \"%.6f\", $1 }")")
    done
    median "${out[@]}"
}

M_INIT_BARE=$(median "${INIT_BARE[@]}")
M_INIT_MGR=$(median "${INIT_MGR[@]}")
M_INCR_BARE=$(median "${INCR_BARE[@]}")
M_INCR_MGR=$(median "${INCR_MGR[@]}")
R_INIT=$(ratio "$M_INIT_MGR" "$M_INIT_BARE")
R_INCR=$(ratio "$M_INCR_MGR" "$M_INCR_BARE")
D_INCR=$(awk -v m="$M_INCR_MGR" -v b="$M_INCR_BARE" 'BEGIN { printf "%+.0f", (m - b) * 1000 }')
P_DIFF=$(pairs '(m - b) * 1000')
P_DIFF=$(awk -v d="$P_DIFF" 'BEGIN { printf "%+.0f", d }')
P_RATIO=$(pairs 'm / b')
if ((${#INCR_OWN[@]} == REPS)); then
    OWN=$(median "${INCR_OWN[@]}")
    OWN="$(awk -v o="$OWN" 'BEGIN { printf "%.0f", o }') ms (= $(ratio "$(awk -v o="$OWN" -v b="$M_INCR_BARE" 'BEGIN { print b + o / 1000 }')" "$M_INCR_BARE") of the bare median)"
else
    OWN="n/a (could not read duration_ms from \`run --json\`)"
fi
if awk -v r="$R_INCR" -v t="$TARGET_RATIO" 'BEGIN { exit !(r <= t) }'; then
    VERDICT=PASS
else
    VERDICT=FAIL
fi

table() {
    printf '| case | bare restic (s) | restic-manager (s) | ratio manager/bare |\n'
    printf '|---|---:|---:|---:|\n'
    printf '| initial | %s | %s | %s |\n' "$M_INIT_BARE" "$M_INIT_MGR" "$R_INIT"
    printf '| incremental, no change | %s | %s | %s |\n' "$M_INCR_BARE" "$M_INCR_MGR" "$R_INCR"
}

printf '\nmedians of %s repetitions, %s files, %s MB\n\n' "$REPS" "$TREE_FILES" "$(mb "$TREE_BYTES")"
table
printf '\nincremental overhead: %s ms per run (median of paired differences %s ms, of paired ratios %s)\n' \
    "$D_INCR" "$P_DIFF" "$P_RATIO"
printf "restic-manager's own time per incremental run (wall minus its restic backup call, median): %s\n" "$OWN"
printf 'machine load while measuring: %s\n' "$MACHINE_LOAD"
printf 'repository key: scrypt %s\n' "$KDF"
printf 'target: incremental ratio <= %s: %s (%s)\n' "$TARGET_RATIO" "$VERDICT" "$R_INCR"

# --- RESULTS.md -----------------------------------------------------------------

if ((WRITE_RESULTS)); then
    section=$(
        results_preamble
        printf -- '- repository key: scrypt %s (one template repository copied to both sides)\n' "$KDF"
        printf -- '- machine load while measuring: %s\n\n' "$MACHINE_LOAD"
        table
        printf '\nIncremental overhead %s ms per run (median of paired differences %s ms, of paired ratios %s); ' \
            "$D_INCR" "$P_DIFF" "$P_RATIO"
        printf 'target ratio <= %s: **%s**.\n' "$TARGET_RATIO" "$VERDICT"
        printf "restic-manager's own time per incremental run (wall minus its restic backup call, median): %s.\n\n" "$OWN"
        printf 'Samples (s):\n\n'
        printf -- '- initial, bare: %s\n' "${INIT_BARE[*]}"
        printf -- '- initial, manager: %s\n' "${INIT_MGR[*]}"
        printf -- '- incremental, bare: %s\n' "${INCR_BARE[*]}"
        printf -- '- incremental, manager: %s\n' "${INCR_MGR[*]}"
        printf -- "- incremental, restic-manager's own time (ms): %s\n" "${INCR_OWN[*]}"
    )
    write_results "$(results_heading)" "$section"
fi

# Exit 3 when the measurement worked but the target was missed (1 is an error).
[[ $VERDICT == PASS ]] || exit 3

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
#   RESTIC     restic binary (default: `restic` on PATH)
# Exit: 0 target met, 3 target missed, 1 error (a backup failed, ...).
set -euo pipefail

export LC_ALL=C

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_SRC/.." && pwd)
REPS=${REPS:-5}
BENCH_DIR=${BENCH_DIR:-$BENCH_SRC/work}
TARGET_RATIO=1.03
# Bump when the tree's shape changes, so an old tree is regenerated.
TREE_VERSION=1
SERVICE=bench
HOST=bench

WRITE_RESULTS=0
COMMAND_LINE="REPS=$REPS bench/overhead.sh $*"

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() {
    printf 'overhead.sh: error: %s\n' "$*" >&2
    exit 1
}

note() {
    printf '%s\n' "$*" >&2
}

while (($#)); do
    case $1 in
        --write-results) WRITE_RESULTS=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *) die "unknown argument \`$1\`; see --help" ;;
    esac
    shift
done

[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, got \`$REPS\`"
[[ -n ${EPOCHREALTIME:-} ]] || die "bash 5 or newer is needed (EPOCHREALTIME)"

# --- binaries -----------------------------------------------------------------

RESTIC=${RESTIC:-$(command -v restic || true)}
[[ -n $RESTIC && -x $RESTIC ]] || die "restic not found; install it (apt-get install restic) or set RESTIC"
RESTIC=$(readlink -f "$RESTIC")

if [[ -n ${RM_BIN:-} ]]; then
    [[ -x $RM_BIN ]] || die "RM_BIN \`$RM_BIN\` is not an executable file"
    RM_BIN=$(readlink -f "$RM_BIN")
else
    note "building restic-manager (cargo build --release)"
    (cd "$REPO_ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    RM_BIN=$REPO_ROOT/target/release/restic-manager
fi

# --- environment shared by both sides -----------------------------------------

mkdir -p "$BENCH_DIR"
BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
TREE=$BENCH_DIR/tree
PW=$BENCH_DIR/password
BARE_REPO=$BENCH_DIR/bare/repos/$SERVICE
MGR_REPOS=$BENCH_DIR/manager/repos
MGR_REPO=$MGR_REPOS/$SERVICE
MGR_STATE=$BENCH_DIR/manager/state
CONFIG=$BENCH_DIR/manager/config.toml
LOGS=$BENCH_DIR/logs

# Both sides see the same HOME/XDG directories and none of the caller's
# restic variables: restic-manager scrubs those from its children, so bare
# restic must not see them either. restic's cache goes through
# XDG_CACHE_HOME for both, one directory per side: the two repositories are
# copies of one template and share a repository ID, hence a cache name.
export HOME=$BENCH_DIR/home
export XDG_CONFIG_HOME=$HOME/.config
export XDG_CACHE_HOME=$BENCH_DIR/cache/other
CACHE_BARE=$BENCH_DIR/cache/bare
CACHE_MGR=$BENCH_DIR/cache/manager
TEMPLATE_REPO=$BENCH_DIR/template-repo
export XDG_STATE_HOME=$BENCH_DIR/xdg-state
export XDG_DATA_HOME=$BENCH_DIR/xdg-data
export XDG_RUNTIME_DIR=$BENCH_DIR/run
unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD RESTIC_PASSWORD_FILE \
    RESTIC_PASSWORD_COMMAND RESTIC_KEY_HINT RESTIC_HOST RESTIC_CACHE_DIR \
    RESTIC_PROGRESS_FPS RESTIC_MANAGER_CONFIG
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$XDG_DATA_HOME" \
    "$LOGS" "$MGR_STATE" "$(dirname "$BARE_REPO")" "$MGR_REPOS"
chmod 0700 "$XDG_RUNTIME_DIR" 2>/dev/null || install -d -m 0700 "$XDG_RUNTIME_DIR"

if [[ ! -s $PW ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$PW")
fi

# --- the tree -----------------------------------------------------------------

# The tree's shape (directories, names, sizes, text or random) comes from a
# Park–Miller generator in awk with a fixed seed: integer-exact in doubles, so
# every awk produces the same manifest. Text content is generated from the
# same stream (deterministic); random content comes from /dev/urandom.
manifest() {
    awk -v seed=20240501 '
    function nxt() { S = (S * 16807) % 2147483647; return S }
    function rnd(n) { return int(nxt() / 2147483647 * n) }
    function emit(count, lo, hi, kind, exts,    i, n, e, d) {
        n = split(exts, e, " ")
        for (i = 0; i < count; i++) {
            d = dirs[rnd(ndirs)]
            printf "%s\t%d\t%s/%s-%05d.%s\n", kind, lo + rnd(hi - lo + 1), d, stem[1 + rnd(nstem)], FILE++, e[1 + rnd(n)]
        }
    }
    BEGIN {
        S = seed
        ntop = split("uploads config logs db docs src media www", top, " ")
        nsub = split("2019 2020 2021 2022 2023 2024 a b c archive users assets lib data tmp old", sub_, " ")
        nstem = split("report invoice note index readme photo thumb export dump entry page module record", stem, " ")
        ndirs = 140
        for (i = 0; i < ndirs; i++) {
            p = top[1 + rnd(ntop)]
            depth = rnd(4)
            for (k = 0; k < depth; k++) p = p "/" sub_[1 + rnd(nsub)]
            dirs[i] = p
        }
        # many small text-like files, some medium, a few large; about
        # 1/3 compressible text and 2/3 random bytes by volume
        emit(1526,    512,    24576, "text", "txt md json conf log csv")
        emit( 300,   4096,   196608, "bin",  "jpg png bin dat")
        emit( 130,  65536,   786432, "text", "log csv sql json")
        emit(  41, 524288,  2097152, "bin",  "jpg mp4 pdf dat")
        emit(   3, 8388608, 16777216, "bin", "tar mp4 img")
    }'
}

# Writes every text file of the manifest (stdin) under $1.
write_text_files() {
    awk -v root="$1" -v seed=77 -F '\t' '
    function nxt() { S = (S * 16807) % 2147483647; return S }
    function rnd(n) { return int(nxt() / 2147483647 * n) }
    BEGIN {
        S = seed
        nw = split("the backup service restic volume snapshot user request error warning " \
            "config database table index page photo upload session token cache worker " \
            "queue job started finished failed retry timeout connection closed opened " \
            "read write delete update insert select from where value key name id size", w, " ")
        nl = split("INFO DEBUG WARN ERROR", lvl, " ")
    }
    $1 == "text" {
        f = root "/" $3; want = $2 + 0; have = 0; buf = ""
        while (have < want) {
            line = sprintf("2024-%02d-%02dT%02d:%02d:%02dZ %s %s:", 1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60), rnd(60), lvl[1 + rnd(nl)], w[1 + rnd(nw)])
            n = 4 + rnd(9)
            for (k = 0; k < n; k++) line = line " " w[1 + rnd(nw)]
            line = line " id=" rnd(1000000) "\n"
            buf = buf line; have += length(line)
            if (length(buf) > 65536) { printf "%s", buf > f; buf = "" }
        }
        printf "%s", substr(buf, 1, length(buf) - (have - want)) > f
        close(f)
    }'
}

build_tree() {
    local want=$BENCH_DIR/tree.manifest.new
    { echo "# tree version $TREE_VERSION"; manifest; } >"$want"
    if [[ -d $TREE && -f $BENCH_DIR/tree.manifest ]] && cmp -s "$want" "$BENCH_DIR/tree.manifest"; then
        rm -f "$want"
        note "reusing the tree in $TREE"
        return
    fi
    note "generating the tree in $TREE"
    rm -rf "$TREE" "$BENCH_DIR/tree.manifest"
    mkdir -p "$TREE"
    grep -v '^#' "$want" | cut -f3 | sed 's|/[^/]*$||' | sort -u | (cd "$TREE" && xargs mkdir -p)
    grep -v '^#' "$want" | write_text_files "$TREE"
    local kind size path
    while IFS=$'\t' read -r kind size path; do
        [[ $kind == bin ]] || continue
        head -c "$size" /dev/urandom >"$TREE/$path"
    done < <(grep -v '^#' "$want")
    local n
    n=$(find "$TREE" -type f | wc -l)
    [[ $n -eq $(grep -vc '^#' "$want") ]] || die "tree has $n files, manifest says otherwise"
    mv "$want" "$BENCH_DIR/tree.manifest"
}

build_tree
TREE_FILES=$(find "$TREE" -type f | wc -l)
TREE_BYTES=$(awk -F '\t' '!/^#/ { s += $2 } END { print s }' "$BENCH_DIR/tree.manifest")
TREE_RANDOM=$(awk -F '\t' '$1 == "bin" { s += $2 } END { print s }' "$BENCH_DIR/tree.manifest")
TREE_DIRS=$(find "$TREE" -mindepth 1 -type d | wc -l)
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }
note "tree: $TREE_FILES files in $TREE_DIRS directories, $(mb "$TREE_BYTES") MB ($(mb "$TREE_RANDOM") MB random, the rest text)"
# Warm the page cache so the first timed run does not pay for cold reads.
find "$TREE" -type f -exec cat {} + >/dev/null

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

# Runs a command with stdout/stderr to a log file; sets ELAPSED (seconds).
# Any non-zero exit (restic-manager's 3 included) stops the benchmark.
ELAPSED=
timed() {
    local log=$1 t0 t1 rc=0
    shift
    t0=$EPOCHREALTIME
    "$@" >"$log" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    if ((rc != 0)); then
        tail -n 20 "$log" >&2
        die "\`$*\` exited $rc (log: $log)"
    fi
    ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
}

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
    KDF=$(grep -ho '"[Nrp]":[0-9]*' "$TEMPLATE_REPO"/keys/* | tr -d '"' | paste -sd ' ')
}

fresh_repo() {
    rm -rf "$1" "$2"
    cp -a "$TEMPLATE_REPO" "$1"
}

# Exactly what src/restic/ops.rs `backup` runs when there is no terminal:
# repository and password in the environment, no progress.
bare_backup() {
    XDG_CACHE_HOME=$CACHE_BARE RESTIC_REPOSITORY=$BARE_REPO RESTIC_PASSWORD_FILE=$PW "$RESTIC" backup --json --quiet \
        --host "$HOST" --tag "service:$SERVICE" --exclude-caches -- "$TREE"
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

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
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
# for: if src/restic/ops.rs changes how it calls restic, bare_backup must
# follow, or the ratio compares different work.
declare -a SNAP_SHAPE=()
for side in bare manager; do
    if [[ $side == bare ]]; then repo=$BARE_REPO cache=$CACHE_BARE; else repo=$MGR_REPO cache=$CACHE_MGR; fi
    n=$(XDG_CACHE_HOME=$cache RESTIC_REPOSITORY=$repo RESTIC_PASSWORD_FILE=$PW "$RESTIC" snapshots --json --no-lock |
        grep -o '"short_id"' | wc -l)
    ((n == REPS + 2)) || die "$repo has $n snapshots, expected $((REPS + 2))"
    SNAP_SHAPE+=("$(XDG_CACHE_HOME=$cache RESTIC_REPOSITORY=$repo RESTIC_PASSWORD_FILE=$PW "$RESTIC" snapshots --json --no-lock --latest 1 |
        grep -oE '"(hostname|paths|tags|excludes)":(\[[^]]*\]|"[^"]*")' | sort | paste -sd ' ')")
done
[[ ${SNAP_SHAPE[0]} == "${SNAP_SHAPE[1]}" ]] ||
    die "bare restic and restic-manager made different snapshots: ${SNAP_SHAPE[0]} vs ${SNAP_SHAPE[1]}; update bare_backup to match src/restic/ops.rs"

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.3f", v[(NR + 1) / 2]
        else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v m="$1" -v b="$2" 'BEGIN { printf "%.3f", m / b }'; }

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
printf 'load average before/after: %s / %s; repository key scrypt %s\n' "$LOAD_BEFORE" "$LOAD_AFTER" "$KDF"
printf 'target: incremental ratio <= %s: %s (%s)\n' "$TARGET_RATIO" "$VERDICT" "$R_INCR"

# --- RESULTS.md -----------------------------------------------------------------

if ((WRITE_RESULTS)); then
    results=$BENCH_SRC/RESULTS.md
    day=$(date -u +%Y-%m-%d)
    commit=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    if [[ -n $(git -C "$REPO_ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        commit="$commit (with uncommitted changes under src/)"
    fi
    cpu=$(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    # Backticks here are Markdown, not command substitution.
    # shellcheck disable=SC2016
    section=$(
        printf '## %s\n\n' "$day"
        printf -- '- command: `%s` (`%s`)\n' "$COMMAND_LINE" "$("$RM_BIN" --version)"
        printf -- '- restic-manager commit: %s\n' "$commit"
        printf -- '- machine: %s CPUs (`nproc`), %s, Linux %s\n' "$(nproc)" "${cpu:-unknown CPU}" "$(uname -r)"
        printf -- '- restic: `%s`\n' "$("$RESTIC" version)"
        printf -- '- tree: %s files in %s directories, %s MB (%s MB random, the rest text)\n' \
            "$TREE_FILES" "$TREE_DIRS" "$(mb "$TREE_BYTES")" "$(mb "$TREE_RANDOM")"
        printf -- '- repository key: scrypt %s (one template repository copied to both sides)\n' "$KDF"
        printf -- '- load average before/after: %s / %s\n\n' "$LOAD_BEFORE" "$LOAD_AFTER"
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
    if [[ ! -f $results ]]; then
        cat >"$results" <<'EOF'
# Overhead of restic-manager over bare restic

Written by `bench/overhead.sh --write-results`; see bench/README.md for the
method. One section per day; a later run on the same day replaces it.
EOF
    fi
    # Drop an earlier section of the same day, then append this one.
    awk -v head="## $day" '
        $0 == head { skip = 1; next }
        skip && /^## / { skip = 0 }
        !skip { print }' "$results" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$results.tmp"
    printf '\n%s\n' "$section" >>"$results.tmp"
    mv "$results.tmp" "$results"
    note "results written to $results"
fi

# Exit 3 when the measurement worked but the target was missed (1 is an error).
[[ $VERDICT == PASS ]] || exit 3

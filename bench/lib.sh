# shellcheck shell=bash
# Globals set here are read by the scripts that source this file.
# shellcheck disable=SC2034
# Shared parts of the benchmarks in bench/ (overhead.sh, fanout.sh): the
# generated tree, the environment both sides of a comparison share, timing,
# statistics, machine-load accounting and writing bench/RESULTS.md.
#
# Sourced, never run. The caller sets BENCH_NAME (its file name), runs under
# `set -euo pipefail`, and then calls, in this order:
#   parse_common_args "$@"; locate_binaries; setup_env; build_tree; tree_stats
# Everything here uses these globals (defaults in brackets):
#   REPS [5], BENCH_DIR [bench/work], RM_BIN [built], RM_COMMIT [the
#   working tree's commit], RESTIC [on PATH],
#   HOST and SERVICE [bench] (what bare restic is told, and the manager's
#   service name), TREE (what is backed up; setup_env sets the shared one).

export LC_ALL=C

BENCH_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_SRC/.." && pwd)
REPS=${REPS:-5}
BENCH_DIR=${BENCH_DIR:-$BENCH_SRC/work}
# Bump when the tree's shape changes, so an old tree is regenerated.
TREE_VERSION=1
SERVICE=bench
HOST=bench
WRITE_RESULTS=0
COMMAND_LINE=

# --- messages and arguments ---------------------------------------------------

# The calling script's header comment (line 2 up to `set -euo`).
usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

die() {
    printf '%s: error: %s\n' "${BENCH_NAME:-bench}" "$*" >&2
    exit 1
}

note() {
    printf '%s\n' "$*" >&2
}

# --write-results and --help; anything else is an error.
parse_common_args() {
    COMMAND_LINE="REPS=$REPS bench/$BENCH_NAME $*"
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
}

# --- binaries -----------------------------------------------------------------

locate_binaries() {
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
}

# --- environment shared by both sides -----------------------------------------

# Both sides see the same HOME/XDG directories and none of the caller's
# restic variables: restic-manager scrubs those from its children, so bare
# restic must not see them either. restic's cache goes through
# XDG_CACHE_HOME; callers give each side its own cache directory (sides get
# copies of the same template repositories, so they share repository IDs,
# hence cache names).
setup_env() {
    mkdir -p "$BENCH_DIR"
    BENCH_DIR=$(cd "$BENCH_DIR" && pwd)
    TREE=$BENCH_DIR/tree
    PW=$BENCH_DIR/password
    export HOME=$BENCH_DIR/home
    export XDG_CONFIG_HOME=$HOME/.config
    export XDG_CACHE_HOME=$BENCH_DIR/cache/other
    export XDG_STATE_HOME=$BENCH_DIR/xdg-state
    export XDG_DATA_HOME=$BENCH_DIR/xdg-data
    export XDG_RUNTIME_DIR=$BENCH_DIR/run
    unset RESTIC_REPOSITORY RESTIC_REPOSITORY_FILE RESTIC_PASSWORD RESTIC_PASSWORD_FILE \
        RESTIC_PASSWORD_COMMAND RESTIC_KEY_HINT RESTIC_HOST RESTIC_CACHE_DIR \
        RESTIC_PROGRESS_FPS RESTIC_MANAGER_CONFIG RESTIC_FROM_REPOSITORY \
        RESTIC_FROM_REPOSITORY_FILE RESTIC_FROM_PASSWORD RESTIC_FROM_PASSWORD_FILE \
        RESTIC_FROM_PASSWORD_COMMAND
    mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME" "$XDG_DATA_HOME"
    chmod 0700 "$XDG_RUNTIME_DIR" 2>/dev/null || install -d -m 0700 "$XDG_RUNTIME_DIR"
    if [[ ! -s $PW ]]; then
        (umask 077 && head -c 32 /dev/urandom | base64 >"$PW")
    fi
}

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

# Generates the shared tree ($BENCH_DIR/tree), or reuses it when its
# manifest is unchanged. Never modify it: both scripts use it (fanout.sh
# changes files only in its own copy).
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

mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1e6 }'; }

# Sets TREE_FILES, TREE_BYTES, TREE_RANDOM, TREE_DIRS (of $TREE), prints
# them, and reads the tree once so the first timed run does not pay for
# cold reads.
tree_stats() {
    TREE_FILES=$(find "$TREE" -type f | wc -l)
    TREE_BYTES=$(awk -F '\t' '!/^#/ { s += $2 } END { print s }' "$BENCH_DIR/tree.manifest")
    TREE_RANDOM=$(awk -F '\t' '$1 == "bin" { s += $2 } END { print s }' "$BENCH_DIR/tree.manifest")
    TREE_DIRS=$(find "$TREE" -mindepth 1 -type d | wc -l)
    note "tree: $TREE_FILES files in $TREE_DIRS directories, $(mb "$TREE_BYTES") MB ($(mb "$TREE_RANDOM") MB random, the rest text)"
    find "$TREE" -type f -exec cat {} + >/dev/null
}

# --- restic -------------------------------------------------------------------

# restic on repository $1 with cache directory $2: `restic_on REPO CACHE ARGS…`.
restic_on() {
    local repo=$1 cache=$2
    shift 2
    XDG_CACHE_HOME=$cache RESTIC_REPOSITORY=$repo RESTIC_PASSWORD_FILE=$PW "$RESTIC" "$@"
}

# Exactly what src/restic/ops.rs `backup` runs when there is no terminal:
# repository and password in the environment, no progress. Keep in step with
# ops.rs; check_same_snapshot notices when the two differ.
bare_backup_to() {
    restic_on "$1" "$2" backup --json --quiet \
        --host "$HOST" --tag "service:$SERVICE" --exclude-caches -- "$TREE"
}

# The scrypt parameters of the repository's key, e.g. `N:32768 r:8 p:4`.
kdf_of() {
    grep -ho '"[Nrp]":[0-9]*' "$1"/keys/* | tr -d '"' | paste -sd ' '
}

# How many snapshots repository $1 (cache $2) holds.
snapshot_count() {
    restic_on "$1" "$2" snapshots --json --no-lock | grep -o '"short_id"' | wc -l
}

# Host, paths, tags and excludes of the newest snapshot of repository $1.
snapshot_shape() {
    restic_on "$1" "$2" snapshots --json --no-lock --latest 1 |
        grep -oE '"(hostname|paths|tags|excludes)":(\[[^]]*\]|"[^"]*")' | sort | paste -sd ' '
}

# Dies unless the newest snapshots of repositories $1 and $3 (caches $2, $4)
# agree on what restic was asked for: if src/restic/ops.rs changes how it
# calls restic, bare_backup_to must follow, or the comparison is unfair.
check_same_snapshot() {
    local a b
    a=$(snapshot_shape "$1" "$2")
    b=$(snapshot_shape "$3" "$4")
    [[ -n $a && $a == "$b" ]] ||
        die "bare restic and restic-manager made different snapshots: $a vs $b; update bare_backup_to (bench/lib.sh) to match src/restic/ops.rs"
}

# --- measuring ----------------------------------------------------------------

# CPU time (ms, user + system) of this shell's finished children, read from
# the `times` builtin without starting a process (a child's own time would
# land in the figure).
CHILD_CPU_MS=0
child_cpu_ms() {
    local f=$BENCH_DIR/.times line
    times >"$f"
    { read -r line && read -r line; } <"$f"
    local re='^([0-9]+)m([0-9]+)\.([0-9]{3})s ([0-9]+)m([0-9]+)\.([0-9]{3})s$'
    [[ $line =~ $re ]] || die "cannot read \`times\` output: $line"
    CHILD_CPU_MS=$(((10#${BASH_REMATCH[1]} * 60 + 10#${BASH_REMATCH[2]}) * 1000 + 10#${BASH_REMATCH[3]} +
        (10#${BASH_REMATCH[4]} * 60 + 10#${BASH_REMATCH[5]}) * 1000 + 10#${BASH_REMATCH[6]}))
}

# Runs a command with stdout/stderr to a log file; sets ELAPSED (seconds,
# wall) and CPU (seconds, user + system of the command and every process it
# waited for, restic children included). Any non-zero exit (restic-manager's
# 3 included) stops the benchmark.
ELAPSED=
CPU=
timed() {
    local log=$1 t0 t1 c0 rc=0
    shift
    child_cpu_ms
    c0=$CHILD_CPU_MS
    t0=$EPOCHREALTIME
    "$@" >"$log" 2>&1 || rc=$?
    t1=$EPOCHREALTIME
    child_cpu_ms
    if ((rc != 0)); then
        tail -n 20 "$log" >&2
        die "\`$*\` exited $rc (log: $log)"
    fi
    ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
    CPU=$(awk -v c="$((CHILD_CPU_MS - c0))" 'BEGIN { printf "%.3f", c / 1000 }')
}

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR % 2) printf "%.3f", v[(NR + 1) / 2]
        else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v m="$1" -v b="$2" 'BEGIN { printf "%.3f", m / b }'; }

# --- machine load -------------------------------------------------------------

# What else the machine did while we measured. `load_mark NAME` remembers
# /proc/stat's CPU counters, our children's CPU time and the clock;
# `load_since NAME VAR` then sets VAR to how many CPUs other processes kept
# busy on average in between (machine busy time minus ours), the
# hypervisor's steal, and the load averages at both ends. Both must run in
# this shell, not in $(…): a subshell does not see our children's times.
load_mark() {
    local name=$1 cpu user nice system irq softirq steal
    read -r cpu user nice system _ _ irq softirq steal _ </proc/stat
    [[ $cpu == cpu ]] || die "unexpected /proc/stat"
    child_cpu_ms
    printf -v "LOAD_MARK_$name" '%s ' "$((user + nice + system + irq + softirq))" "$steal" \
        "$CHILD_CPU_MS" "$EPOCHREALTIME" "$(cut -d' ' -f1-3 /proc/loadavg)"
}

load_since() {
    local name=$1 var=$2 mark user nice system irq softirq steal now text
    mark=LOAD_MARK_$name
    [[ -n ${!mark:-} ]] || die "no load mark $name"
    read -r _ user nice system _ _ irq softirq steal _ </proc/stat
    now=$EPOCHREALTIME
    child_cpu_ms
    # shellcheck disable=SC2086 # the mark is a list of fields
    set -- ${!mark}
    text=$(awk -v b0="$1" -v s0="$2" -v own0="$3" -v t0="$4" \
        -v b1="$((user + nice + system + irq + softirq))" -v s1="$steal" -v own1="$CHILD_CPU_MS" -v t1="$now" \
        -v hz="$(getconf CLK_TCK)" -v n="$(nproc)" -v la0="$5 $6 $7" -v la1="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
            wall = t1 - t0; busy = (b1 - b0) / hz; own = (own1 - own0) / 1000
            others = busy - own; if (others < 0) others = 0
            printf "other processes kept %.2f of %d CPUs busy on average (%.0f%%) over %.0f s, this benchmark %.2f; steal %.1f%%; load average %s -> %s",
                others / wall, n, 100 * others / (wall * n), wall, own / wall, 100 * (s1 - s0) / hz / (wall * n), la0, la1
        }')
    printf -v "$var" '%s' "$text"
}

# --- RESULTS.md -----------------------------------------------------------------

# The commit the measured binary was built from, short: RM_COMMIT when set
# (for an RM_BIN built elsewhere), else this working tree's HEAD.
measured_commit() {
    local c=${RM_COMMIT:-HEAD}
    git -C "$REPO_ROOT" rev-parse --short "$c" 2>/dev/null || printf '%s' "${RM_COMMIT:-unknown}"
}

# Markdown list items every results section starts with.
results_preamble() {
    local commit cpu
    commit=$(measured_commit)
    if [[ -n ${RM_COMMIT:-} ]]; then
        commit="$commit (RM_COMMIT; binary $RM_BIN)"
    elif [[ -n $(git -C "$REPO_ROOT" status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null) ]]; then
        commit="$commit (with uncommitted changes under src/)"
    fi
    cpu=$(awk -F ': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    # Backticks here are Markdown, not command substitution.
    # shellcheck disable=SC2016
    {
        printf -- '- command: `%s` (`%s`)\n' "$COMMAND_LINE" "$("$RM_BIN" --version)"
        printf -- '- restic-manager commit: %s\n' "$commit"
        printf -- '- machine: %s CPUs (`nproc`), %s, Linux %s\n' "$(nproc)" "${cpu:-unknown CPU}" "$(uname -r)"
        printf -- '- restic: `%s`\n' "$("$RESTIC" version)"
        printf -- '- tree: %s files in %s directories, %s MB (%s MB random, the rest text)\n' \
            "$TREE_FILES" "$TREE_DIRS" "$(mb "$TREE_BYTES")" "$(mb "$TREE_RANDOM")"
    }
}

# The heading of this script's section for today and the measured commit: a
# later run of the same script on the same day and commit replaces it.
results_heading() {
    printf '## %s: %s at %s' "$(date -u +%Y-%m-%d)" "$BENCH_NAME" "$(measured_commit)"
}

# Replaces the section headed $1 in bench/RESULTS.md (or appends it) with
# the heading and the text $2.
write_results() {
    local head=$1 section=$2 results=$BENCH_SRC/RESULTS.md
    if [[ ! -f $results ]]; then
        cat >"$results" <<'EOF'
# Benchmark results

Written by `bench/overhead.sh --write-results` and `bench/fanout.sh
--write-results`; bench/README.md explains the methods. One section per
script, day and commit; a later run replaces it.
EOF
    fi
    # Drop an earlier section with the same heading, then append this one.
    awk -v head="$head" '
        $0 == head { skip = 1; next }
        skip && /^## / { skip = 0 }
        !skip { print }' "$results" | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' >"$results.tmp"
    printf '\n%s\n\n%s\n' "$head" "$section" >>"$results.tmp"
    mv "$results.tmp" "$results"
    note "results written to $results"
}

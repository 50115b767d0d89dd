#!/usr/bin/env bash
# Measures a streamed PostgreSQL dump through restic-manager against the
# shell pipe it replaces (issue 5, "Performance").
#
# One run, same machine, same database: a private PostgreSQL cluster on a
# free loopback port holds a database of about DB_MB megabytes. Each
# repetition backs it up twice, in alternating order, into fresh copies of
# one empty repository:
#   pipe:    pg_dump --format=custom … | restic backup --stdin …
#   manager: restic-manager run (a `type = "postgres"` dump of the database)
# Prints the medians and speed ratio pipe_time / manager_time (target at
# least 0.95: the manager is at most ~5% slower), and the temporary disk the
# manager used: TMPDIR points at an empty folder that is polled every 50 ms
# during the run, and the free space of its file system (outside the
# repositories) is compared before and after. Target: 0 bytes.
#
# Usage: bench/dump.sh [--help]
# Environment:
#   REPS       repetitions (default 3)
#   DB_MB      database size in MB (default 500)
#   BENCH_DIR  work directory (default bench/work, gitignored)
#   RM_BIN     restic-manager binary to measure (default: cargo build --release)
#   RESTIC     restic binary (default: `restic` on PATH)
# Needs: root (the cluster runs as the `postgres` user), PostgreSQL server
# packages (`apt-get install postgresql`).
# Exit: 0 targets met, 3 a target missed, 1 error.
set -euo pipefail

BENCH_NAME=dump.sh
REPS=${REPS:-3}
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET_RATIO=0.95
DB_MB=${DB_MB:-500}
[[ $DB_MB =~ ^[1-9][0-9]*$ ]] || die "DB_MB must be a positive integer"

parse_common_args "$@"
((EUID == 0)) || die "run as root: the cluster runs as the \`postgres\` user (runuser)"
locate_binaries
setup_env

PGB=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d | sort -V | tail -n 1)
[[ -x $PGB/initdb ]] || die "PostgreSQL server binaries not found; apt-get install postgresql"
command -v pg_dump >/dev/null || die "pg_dump not found; apt-get install postgresql-client"

D=$BENCH_DIR/dump
PGDIR=$(mktemp -d /tmp/rm-bench-pg.XXXXXX)
SCRATCH=$D/tmp
LOGS=$D/logs
PGPW=$D/pgpassword
CONFIG=$D/config.toml
rm -rf "$D"
mkdir -p "$D" "$LOGS" "$SCRATCH"
printf 'bench-pg-password\n' >"$PGPW"
chmod 600 "$PGPW"

cleanup() {
    runuser -u postgres -- "$PGB/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGDIR"
}
trap cleanup EXIT

# --- the database -------------------------------------------------------------

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
chmod 755 "$PGDIR"
cp "$PGPW" "$PGDIR/pw"
chown -R postgres "$PGDIR"
note "initialising a PostgreSQL cluster on 127.0.0.1:$PORT"
runuser -u postgres -- "$PGB/initdb" -D "$PGDIR/data" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$PGDIR/pw" >"$LOGS/initdb.log" 2>&1 ||
    die "initdb failed (log: $LOGS/initdb.log)"
runuser -u postgres -- "$PGB/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w \
    -o "-p $PORT -k $PGDIR -c listen_addresses=127.0.0.1" start >/dev/null ||
    die "the cluster did not start: $(tail -n 5 "$PGDIR/log")"
export PGPASSWORD
PGPASSWORD=$(head -n 1 "$PGPW")
psql_() { psql -X -q -At -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }

# About 115 bytes per row on disk (two md5 strings, a number, a timestamp).
ROWS=$((DB_MB * 1000000 / 115))
note "creating database \`bench\` with $ROWS rows (about $DB_MB MB)"
psql_ -d postgres -c 'CREATE DATABASE bench'
psql_ -d bench -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS a, md5((g * 7)::text) AS b,
    timestamp '2024-01-01' + g * interval '1 second' AS ts FROM generate_series(1, $ROWS) g"
DB_BYTES=$(psql_ -d bench -c "SELECT pg_database_size('bench')")
unset PGPASSWORD
note "database size: $(mb "$DB_BYTES") MB"

# --- repositories and configuration -------------------------------------------------

TEMPLATE=$D/template-repo
restic_on "$TEMPLATE" "$D/cache-init" init >/dev/null
cat >"$CONFIG" <<EOF
# Written by bench/dump.sh.
[global]
restic_password_file = "$PW"
state_directory = "$D/state"
restic_binary = "$RESTIC"
host = "$HOST"

[destinations.local]
type = "local"
path = "$D/manager-repos"

[services.$SERVICE]
targets = ["local"]

[[services.$SERVICE.config.dumps]]
name = "db"
type = "postgres"
database = "bench"
host = "127.0.0.1"
port = $PORT
user = "postgres"
password_file = "$PGPW"
EOF

# Exactly what the preset runs (src/sources/dump.rs `dump_command`) and how
# it calls restic (`backup_args`), as a shell pipe.
pipe_backup() {
    PGPASSWORD=$(head -n 1 "$PGPW") pg_dump --format=custom --no-password --host=127.0.0.1 \
        --port="$PORT" --username=postgres --dbname=bench |
        restic_on "$D/pipe-repo" "$D/cache-pipe" backup --json --quiet --host "$HOST" \
            --tag "service:$SERVICE" --tag dump:db --stdin --stdin-filename db.pgdump
}

manager_backup() {
    TMPDIR=$SCRATCH XDG_CACHE_HOME=$D/cache-manager \
        "$RM_BIN" --config "$CONFIG" run --service "$SERVICE"
}

fresh() {
    rm -rf "$D/pipe-repo" "$D/manager-repos" "$D/cache-pipe" "$D/cache-manager"
    mkdir -p "$D/manager-repos"
    cp -a "$TEMPLATE" "$D/pipe-repo"
    cp -a "$TEMPLATE" "$D/manager-repos/$SERVICE"
}

# Largest size (bytes) $SCRATCH reached while PID $1 ran, and the last
# `write_bytes` (bytes the kernel sent to storage for that process: logs,
# history, and any temporary file it would write) seen in /proc/PID/io.
watch_scratch() {
    local pid=$1 max=0 s wb=0 w
    while kill -0 "$pid" 2>/dev/null; do
        s=$(du -sb "$SCRATCH" | cut -f1)
        s=$((s - 4096))
        ((s > max)) && max=$s
        w=$(awk '/^write_bytes/ { print $2 }' "/proc/$pid/io" 2>/dev/null || true)
        [[ -n $w ]] && wb=$w
        sleep 0.05
    done
    echo "$max $wb"
}

free_bytes() { df -B1 --output=avail "$SCRATCH" | tail -n 1 | tr -d ' '; }
repo_bytes() { du -sb "$1" | cut -f1; }

PIPE_T=()
MGR_T=()
TMP_MAX=0
DISK_EXTRA_MAX=0
WROTE_MAX=0
load_mark all
for ((i = 1; i <= REPS; i++)); do
    fresh
    for side in $( ((i % 2)) && echo "pipe manager" || echo "manager pipe"); do
        if [[ $side == pipe ]]; then
            timed "$LOGS/pipe-$i.log" pipe_backup
            PIPE_T+=("$ELAPSED")
            note "rep $i: pipe    ${ELAPSED}s"
        else
            before=$(free_bytes)
            repo0=$(repo_bytes "$D/manager-repos")
            t0=$EPOCHREALTIME
            manager_backup >"$LOGS/manager-$i.log" 2>&1 &
            pid=$!
            read -r peak wrote < <(watch_scratch "$pid")
            wait "$pid" || die "restic-manager run failed (log: $LOGS/manager-$i.log)"
            t1=$EPOCHREALTIME
            ELAPSED=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
            # Free space lost beyond what the repository grew (other
            # processes on a shared machine add noise; clamp at 0).
            extra=$((before - $(free_bytes) - ($(repo_bytes "$D/manager-repos") - repo0)))
            ((extra < 0)) && extra=0
            ((peak > TMP_MAX)) && TMP_MAX=$peak
            ((extra > DISK_EXTRA_MAX)) && DISK_EXTRA_MAX=$extra
            ((wrote > WROTE_MAX)) && WROTE_MAX=$wrote
            MGR_T+=("$ELAPSED")
            note "rep $i: manager ${ELAPSED}s (TMPDIR peak $peak bytes, manager process wrote $wrote bytes)"
        fi
    done
done
load_since all LOAD

# Both sides stored the same dump.
pipe_size=$(restic_on "$D/pipe-repo" "$D/cache-pipe" stats --json latest | grep -o '"total_size":[0-9]*' | cut -d: -f2)
mgr_size=$(restic_on "$D/manager-repos/$SERVICE" "$D/cache-manager" stats --json latest | grep -o '"total_size":[0-9]*' | cut -d: -f2)

pipe_med=$(median "${PIPE_T[@]}")
mgr_med=$(median "${MGR_T[@]}")
speed=$(ratio "$pipe_med" "$mgr_med")
ok=$(awk -v r="$speed" -v t="$TARGET_RATIO" 'BEGIN { print (r >= t) ? 1 : 0 }')

cat <<EOF
database:            $(mb "$DB_BYTES") MB (pg_database_size), dump $(mb "${mgr_size:-0}") MB (manager) / $(mb "${pipe_size:-0}") MB (pipe)
pipe times (s):      ${PIPE_T[*]}
manager times (s):   ${MGR_T[*]}
median pipe:         ${pipe_med}s
median manager:      ${mgr_med}s
speed ratio:         $speed (pipe time / manager time; target >= $TARGET_RATIO) $( ((ok)) && echo PASS || echo MISS)
TMPDIR peak:         $TMP_MAX bytes (target 0) $( ((TMP_MAX == 0)) && echo PASS || echo MISS)
manager process's own disk writes (max, /proc/PID/io write_bytes): $WROTE_MAX bytes (run log and history; restic's writes are the repository)
free space lost beyond repository growth (max): $DISK_EXTRA_MAX bytes (includes every other process on the machine)
machine:             $LOAD
EOF
((ok && TMP_MAX == 0)) || exit 3

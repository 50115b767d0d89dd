#!/usr/bin/env bash
# bench/status.sh: how fast `restic-manager status` answers from history
# (issue 7, "status": < 50 ms with 50 services × 3 destinations and 10,000
# recorded runs).
#
# Builds that history with sqlite3 inserts into the real schema (created by
# the binary itself), behind a configuration of 50 services with 3
# destinations each, then times `status` and `status --json`, and, in the
# same run, two bare baselines: `validate` (start-up and configuration
# only) and the sqlite3 shell answering one equivalent query per service.
# Uses hyperfine when installed, else a loop of REPS runs.
#
# Usage: REPS=30 bench/status.sh        (RM_BIN=path skips the release build)
# Needs: bash, sqlite3, cargo (unless RM_BIN is set); hyperfine optional.
set -euo pipefail
export LC_ALL=C

REPS=${REPS:-30}
SERVICES=50
RUNS=10000
LIMIT_MS=50
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/rm-bench-status.XXXXXX")
[[ -n ${KEEP:-} ]] || trap 'rm -rf "$WORK"' EXIT; echo "work: $WORK" >&2

die() {
    printf 'status.sh: error: %s\n' "$*" >&2
    exit 1
}
command -v sqlite3 >/dev/null || die "sqlite3 not found; apt-get install sqlite3"
if [[ -n ${RM_BIN:-} ]]; then
    [[ -x $RM_BIN ]] || die "RM_BIN \`$RM_BIN\` is not executable"
else
    echo "building restic-manager (cargo build --release)" >&2
    (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
    RM_BIN=$ROOT/target/release/restic-manager
fi

# --- the configuration: 50 services, 3 destinations each -------------------
CONFIG=$WORK/config.toml
{
    printf '[global]\nrestic_password_file = "%s/pw"\nstate_directory = "%s/state"\nhost = "bench"\n\n' "$WORK" "$WORK"
    for d in local nas offsite; do
        printf '[destinations.%s]\ntype = "local"\npath = "%s/repos/%s"\n\n' "$d" "$WORK" "$d"
    done
    for i in $(seq -w 1 "$SERVICES"); do
        printf '[services.svc%s]\ntargets = ["local", "nas", "offsite"]\nschedule = "%d 2 * * *"\n[services.svc%s.config]\npaths = ["/srv/svc%s"]\n\n' \
            "$i" "$((10#$i % 60))" "$i" "$i"
    done
} >"$CONFIG"
echo "bench-password" >"$WORK/pw"

# --- the history: the binary creates the schema, sqlite3 fills it ----------
"$RM_BIN" -c "$CONFIG" status >/dev/null 2>&1 || true
DB=$WORK/state/history.sqlite
[[ -f $DB ]] || die "restic-manager did not create $DB"
# 10,000 runs spread over the services, one every ~50 minutes per service
# going back in time, each with a target row per destination; one in 20
# runs failed, one in 10 had warnings; a verify per repository and week.
sqlite3 "$DB" >/dev/null <<SQL
PRAGMA journal_mode = WAL;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $RUNS - 1)
INSERT INTO runs (id, service, started_at, finished_at, outcome, trigger, pid, host)
SELECT i + 1,
       printf('svc%02d', i % $SERVICES + 1),
       (CAST(strftime('%s', 'now') AS INTEGER) - (i / $SERVICES) * 3000 - 600) * 1000,
       (CAST(strftime('%s', 'now') AS INTEGER) - (i / $SERVICES) * 3000 - 540) * 1000,
       CASE WHEN i % 20 = 7 THEN 'failed' WHEN i % 10 = 3 THEN 'warning' ELSE 'ok' END,
       'cron', 1, 'bench'
FROM n;
INSERT INTO run_targets (run_id, destination, repository, outcome, error_message, snapshot_id,
                         files_new, files_changed, files_unmodified, bytes_added, bytes_processed,
                         duration_ms, finished_at)
SELECT r.id, d.name, '$WORK/repos/' || d.name || '/' || r.service, r.outcome,
       CASE r.outcome WHEN 'failed' THEN 'repository is locked' END,
       CASE WHEN r.outcome != 'failed' THEN substr(hex(randomblob(4)), 1, 8) END,
       10, 5, 1000, 123456, 9999999, 60000, r.finished_at
FROM runs r, (SELECT 'local' AS name UNION ALL SELECT 'nas' UNION ALL SELECT 'offsite') d;
WITH RECURSIVE w(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM w WHERE k < 3)
INSERT INTO verifies (service, destination, kind, trigger, started_at, finished_at, outcome)
SELECT DISTINCT r.service, d.name, 'check', 'cron',
       (CAST(strftime('%s', 'now') AS INTEGER) - w.k * 7 * 86400) * 1000,
       (CAST(strftime('%s', 'now') AS INTEGER) - w.k * 7 * 86400 + 60) * 1000, 'ok'
FROM runs r, w, (SELECT 'local' AS name UNION ALL SELECT 'nas' UNION ALL SELECT 'offsite') d;
COMMIT;
SQL
runs=$(sqlite3 "$DB" "SELECT COUNT(*) FROM runs")
targets=$(sqlite3 "$DB" "SELECT COUNT(*) FROM run_targets")
echo "history: $runs runs, $targets target rows, $SERVICES services x 3 destinations" >&2
rc=0
"$RM_BIN" -c "$CONFIG" status >/dev/null 2>&1 || rc=$?
[[ $rc == 0 || $rc == 1 || $rc == 3 ]] || die "status failed with exit code $rc"

# The bare baseline: the sqlite3 shell running the queries `status` runs
# (newest finished run and its targets; per destination the newest and the
# first snapshot and the newest verify), without anything around them.
BARE=$WORK/bare.sql
for i in $(seq -w 1 "$SERVICES"); do
    s="svc$i"
    printf "SELECT * FROM run_targets WHERE run_id = (SELECT id FROM runs WHERE service = '%s' AND outcome != 'running' ORDER BY started_at DESC LIMIT 1);\n" "$s"
    for d in local nas offsite; do
        for dir in DESC ASC; do
            printf "SELECT t.snapshot_id, t.finished_at FROM runs r CROSS JOIN run_targets t ON t.run_id = r.id WHERE r.service = '%s' AND +t.destination = '%s' AND t.snapshot_id IS NOT NULL AND t.outcome IN ('ok', 'warning') ORDER BY r.started_at %s LIMIT 1;\n" "$s" "$d" "$dir"
        done
        printf "SELECT * FROM verifies WHERE service = '%s' AND destination = '%s' AND outcome != 'running' ORDER BY started_at DESC LIMIT 1;\n" "$s" "$d"
    done
done >"$BARE"

# --- timing ---------------------------------------------------------------
# "mean min cpu" in milliseconds over REPS runs of "$@" (exit codes 0, 1 and
# 3 are fine); cpu is user + system time, which a busy machine disturbs
# less than wall-clock time. Without hyperfine: mean only (min and cpu "-").
measure() {
    if command -v hyperfine >/dev/null; then
        hyperfine --runs "$REPS" --warmup 3 -N -i --export-json "$WORK/h.json" "$*" >/dev/null 2>&1
        tr -d ' \n' <"$WORK/h.json" | awk '{
            m = $0; sub(/.*"mean":/, "", m); sub(/,.*/, "", m)
            n = $0; sub(/.*"min":/, "", n); sub(/,.*/, "", n)
            u = $0; sub(/.*"user":/, "", u); sub(/,.*/, "", u)
            y = $0; sub(/.*"system":/, "", y); sub(/,.*/, "", y)
            printf "%.1f %.1f %.1f\n", m * 1000, n * 1000, (u + y) * 1000 }'
    else
        local start end i
        for ((i = 0; i < 3; i++)); do "$@" >/dev/null 2>&1 || true; done
        start=$(date +%s%N)
        for ((i = 0; i < REPS; i++)); do "$@" >/dev/null 2>&1 || true; done
        end=$(date +%s%N)
        awk -v t=$((end - start)) -v n="$REPS" 'BEGIN { printf "%.1f - -\n", t / n / 1e6 }'
    fi
}

tool=$(command -v hyperfine >/dev/null && echo "hyperfine $(hyperfine --version | cut -d' ' -f2)" || echo "shell loop")
read -r status_ms status_min status_cpu < <(measure "$RM_BIN" -c "$CONFIG" status)
read -r json_ms json_min json_cpu < <(measure "$RM_BIN" -c "$CONFIG" status --json)
read -r validate_ms validate_min validate_cpu < <(measure "$RM_BIN" -c "$CONFIG" validate)
read -r bare_ms bare_min bare_cpu < <(measure sqlite3 -init "$BARE" "$DB" .quit)

verdict=PASS
awk -v s="$status_ms" -v l="$LIMIT_MS" 'BEGIN { exit !(s < l) }' || verdict=FAIL
printf '\nstatus benchmark (%s, %s runs each, %s cores, load average %s)\n' \
    "$tool" "$REPS" "$(nproc)" "$(cut -d' ' -f1 /proc/loadavg)"
printf '  %-44s %8s %8s %8s\n' "" "mean ms" "min ms" "cpu ms"
printf '  %-44s %8s %8s %8s\n' "restic-manager status" "$status_ms" "$status_min" "$status_cpu"
printf '  %-44s %8s %8s %8s\n' "restic-manager status --json" "$json_ms" "$json_min" "$json_cpu"
printf '  %-44s %8s %8s %8s\n' "restic-manager validate (start-up + config)" "$validate_ms" "$validate_min" "$validate_cpu"
printf '  %-44s %8s %8s %8s\n' "sqlite3 shell, the same queries (bare)" "$bare_ms" "$bare_min" "$bare_cpu"
awk -v s="$status_ms" -v v="$validate_ms" -v b="$bare_ms" 'BEGIN {
    printf "  mean ratios: status / validate = %.2f, status / bare sqlite3 = %.2f\n", s / v, s / b }'
printf '  target: status < %d ms (mean): %s\n' "$LIMIT_MS" "$verdict"

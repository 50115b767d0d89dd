#!/usr/bin/env bash
# Measures restic-manager's Docker support (issue 5, "Performance") against
# the machine's real Docker engine:
#
# (a) A named volume of about 200 MB (200 random files of 1 MiB in 10
#     folders) is backed up, then 1 % of it (2 files) is rewritten and it is
#     backed up again. Figure: bytes the second backup added (restic's
#     `data_added`, from `run --json`) divided by the bytes changed. Target
#     <= 1.2 in the default (direct) mode. Printed for information: the same
#     in the streamed mode (`volume_mode = "stream"`, one uncompressed tar
#     through a helper container), and a volume of 2000 files of 100 KiB in
#     one folder with 20 files rewritten, where restic's metadata (the
#     folder's tree, about 300 bytes per entry, stored again when any entry
#     changes) adds to the data.
# (b) Container downtime (`containers_stopped_ms` of `run --json`) of a
#     service with `stop_containers`, backing up the same volume to 1 target
#     and to 3 targets (replication = "copy", and "parallel"). Target:
#     median(3 targets) / median(1 target) <= 1.1 for both.
#
# Prints medians over REPS incremental runs; exit 0 when both targets are
# met, 3 when one is missed, 1 on errors.
#
# Usage: bench/docker.sh [--help]
# Environment:
#   REPS       repetitions for (b) (default 5)
#   BENCH_DIR  work directory (default bench/work; this script uses docker/)
#   RM_BIN     restic-manager binary to measure (default: cargo build --release)
#   RESTIC     restic binary (default: `restic` on PATH)
# Needs docker (root or the docker group), jq, and busybox-static for the
# container image (built with `docker import`; no registry is used).
set -euo pipefail

BENCH_NAME=docker.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TARGET_BYTES_RATIO=1.2
TARGET_DOWNTIME_RATIO=1.1
# Shapes of the volume: files, KiB per file, folders.
FILES=200
FILE_KIB=1024
DIRS=10
SMALL_FILES=2000
SMALL_KIB=100
IMAGE=restic-manager-bench-busybox:1
TAG=$$

parse_common_args "$@"
command -v jq >/dev/null || die "jq not found; install it (apt-get install jq)"
command -v docker >/dev/null || die "docker not found"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (run as root or in the docker group)"
[[ -x /bin/busybox ]] || die "/bin/busybox missing; apt-get install busybox-static"
locate_binaries
setup_env

W=$BENCH_DIR/docker
rm -rf "$W"
mkdir -p "$W"
VOL=rm-bench-vol-$TAG
APP=rm-bench-app-$TAG

cleanup() {
    docker rm -f "$APP" >/dev/null 2>&1 || true
    docker volume rm -f "$VOL" >/dev/null 2>&1 || true
}
trap cleanup EXIT

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
    note "building $IMAGE from /bin/busybox (docker import)"
    mkdir -p "$W/img/bin"
    cp /bin/busybox "$W/img/bin/"
    for a in sh dd seq sleep tar find rm; do ln -s busybox "$W/img/bin/$a"; done
    tar -C "$W/img" -cf "$W/img.tar" .
    docker import --change 'ENV PATH=/bin' "$W/img.tar" "$IMAGE" >/dev/null
fi

in_volume() {
    docker run --rm --network none -v "$VOL:/data" "$IMAGE" sh -c "$1"
}

# fill FILES KIB DIRS: replaces the volume's content with FILES random
# files of KIB KiB spread over DIRS folders (d1/f1, d2/f2, ...).
fill() {
    note "filling volume $VOL: $1 files of $2 KiB in $3 folders"
    in_volume "rm -rf /data/*; for i in \$(seq 1 $1); do d=/data/d\$((i % $3)); mkdir -p \$d; dd if=/dev/urandom of=\$d/f\$i bs=1024 count=$2 2>/dev/null; done"
}

# change FILES KIB DIRS N: rewrites N of those files (spread out).
change() {
    in_volume "for k in \$(seq 1 $4); do i=\$((k * 97 % $1 + 1)); dd if=/dev/urandom of=/data/d\$((i % $3))/f\$i bs=1024 count=$2 2>/dev/null; done"
}

docker volume create "$VOL" >/dev/null
docker run -d --name "$APP" --network none -v "$VOL:/data" "$IMAGE" \
    sh -c "trap 'exit 0' TERM; while :; do sleep 1 & wait \$!; done" >/dev/null

# config NAME TARGETS REPLICATION MODE: a config file for one case.
config() {
    local name=$1 targets=$2 replication=$3 mode=$4 f=$W/$1.toml t list=
    {
        printf '[global]\nrestic_password_file = "%s"\nstate_directory = "%s"\n' "$PW" "$W/state-$name"
        printf 'lock_directory = "%s"\nlog_directory = "%s"\n\n' "$W/lock-$name" "$W/logs-$name"
        for ((t = 1; t <= targets; t++)); do
            printf '[destinations.d%d]\ntype = "local"\npath = "%s"\n\n' "$t" "$W/repo-$name-$t"
            list+="${list:+, }\"d$t\""
        done
        printf '[services.app]\ntargets = [%s]\nreplication = "%s"\n\n' "$list" "$replication"
        printf '[services.app.config]\nvolumes = ["%s"]\nvolume_mode = "%s"\n' "$VOL" "$mode"
        printf 'docker_helper_image = "%s"\nstop_containers = ["%s"]\n' "$IMAGE" "$APP"
    } >"$f"
    XDG_CACHE_HOME=$W/cache-$name "$RM_BIN" --config "$f" setup >"$W/setup-$name.log" 2>&1 ||
        die "setup of $name failed (log: $W/setup-$name.log)"
}

# run_json NAME: one `run --json` of case NAME; prints the JSON.
run_json() {
    XDG_CACHE_HOME=$W/cache-$1 "$RM_BIN" --config "$W/$1.toml" run --json 2>"$W/run-$1.err" ||
        die "run of $1 failed: $(tail -n 3 "$W/run-$1.err")"
}

# --- (a) bytes added by an incremental backup --------------------------------
declare -A added
fill "$SMALL_FILES" "$SMALL_KIB" 1
config a-small 1 parallel direct
run_json a-small >/dev/null
change "$SMALL_FILES" "$SMALL_KIB" 1 $((SMALL_FILES / 100))
added[small]=$(run_json a-small | jq '.services[0].targets[0].bytes_added')
small_changed=$((SMALL_FILES / 100 * SMALL_KIB * 1024))

fill "$FILES" "$FILE_KIB" "$DIRS"
for mode in direct stream; do
    config "a-$mode" 1 parallel "$mode"
    run_json "a-$mode" >/dev/null
done
change "$FILES" "$FILE_KIB" "$DIRS" $((FILES / 100))
changed_bytes=$((FILES / 100 * FILE_KIB * 1024))
for mode in direct stream; do
    added[$mode]=$(run_json "a-$mode" | jq '.services[0].targets[0].bytes_added')
done

# --- (b) downtime with 1 and 3 targets ---------------------------------------
config b1 1 parallel direct
config b3copy 3 copy direct
config b3par 3 parallel direct
for c in b1 b3copy b3par; do run_json "$c" >/dev/null; done
declare -A down
# The order of the cases rotates, so none always runs first after a change.
cases=(b1 b3copy b3par)
for ((r = 0; r < REPS; r++)); do
    change "$FILES" "$FILE_KIB" "$DIRS" $((FILES / 100))
    for ((k = 0; k < 3; k++)); do
        c=${cases[(r + k) % 3]}
        down[$c]+="$(run_json "$c" | jq '.services[0].containers_stopped_ms') "
    done
done

# shellcheck disable=SC2086 # word lists
{
    m1=$(median ${down[b1]})
    m3c=$(median ${down[b3copy]})
    m3p=$(median ${down[b3par]})
}
rd=$(ratio "${added[direct]}" "$changed_bytes")
rs=$(ratio "${added[stream]}" "$changed_bytes")
rsm=$(ratio "${added[small]}" "$small_changed")
rc=$(ratio "$m3c" "$m1")
rp=$(ratio "$m3p" "$m1")

printf '\n(a) volume of %s MB (%s files of %s KiB in %s folders), %s bytes changed\n' \
    "$(mb $((FILES * FILE_KIB * 1024)))" "$FILES" "$FILE_KIB" "$DIRS" "$changed_bytes"
printf '    direct: %s bytes added, %s x changed (target <= %s)\n' "${added[direct]}" "$rd" "$TARGET_BYTES_RATIO"
printf '    stream: %s bytes added, %s x changed (information)\n' "${added[stream]}" "$rs"
printf '    direct, %s files of %s KiB in one folder, %s bytes changed: %s bytes added, %s x (information)\n' \
    "$SMALL_FILES" "$SMALL_KIB" "$small_changed" "${added[small]}" "$rsm"
printf '(b) container downtime, median of %s runs (ms): 1 target %s; 3 targets copy %s, parallel %s\n' "$REPS" "$m1" "$m3c" "$m3p"
printf '    ratio 3/1: copy %s, parallel %s (target <= %s)\n' "$rc" "$rp" "$TARGET_DOWNTIME_RATIO"
printf '    all runs (ms): 1 target: %s| copy: %s| parallel: %s\n' "${down[b1]}" "${down[b3copy]}" "${down[b3par]}"

ok=1
awk -v r="$rd" -v t="$TARGET_BYTES_RATIO" 'BEGIN { exit !(r <= t) }' || ok=0
awk -v r="$rc" -v t="$TARGET_DOWNTIME_RATIO" 'BEGIN { exit !(r <= t) }' || ok=0
awk -v r="$rp" -v t="$TARGET_DOWNTIME_RATIO" 'BEGIN { exit !(r <= t) }' || ok=0
if ((ok)); then
    echo "PASS"
    exit 0
fi
echo "MISS"
exit 3

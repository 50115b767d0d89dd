#!/usr/bin/env bash
# Prepares the clean machines the package tests install into: Docker images
# of a minimal Debian 12 (bookworm) and Debian 13 (trixie), made with
# debootstrap from this machine's Debian mirror and `docker import` (no image
# registry). No Rust toolchain and no build tools are in them; restic is not
# either (the package's dependency brings it from that release's archive:
# 0.14 on 12, 0.18 on 13).
#
# Cached: an image that exists is kept (RM_CLEAN_REBUILD=1 makes them anew).
# Names: restic-manager-test/debian-12:clean, restic-manager-test/debian-13:clean.
# Needs root (debootstrap, chroot) and the Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

case "${1:-}" in
    -h | --help)
        sed -n '2,11s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
esac

apt_install debootstrap ca-certificates debian-archive-keyring
ensure_docker_engine

# The machine's own Debian mirror (deb822 or one-line sources), so the
# containers' apt reaches the same archive as this machine.
mirror() {
    local m=""
    if [ -r /etc/apt/sources.list.d/debian.sources ]; then
        m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
    fi
    if [ -z "$m" ] && [ -r /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}
MIRROR="${RM_DEBIAN_MIRROR:-$(mirror)}"

work=target/clean-machines
mkdir -p "$work"

make_image() {
    local suite=$1 image=$2
    if [ "${RM_CLEAN_REBUILD:-0}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
        echo "==> $image exists (RM_CLEAN_REBUILD=1 makes it anew)"
        return 0
    fi
    local root="$work/$suite-root"
    rm -rf "$root"
    echo "==> debootstrap $suite from $MIRROR (about 30 s)"
    if ! debootstrap --variant=minbase --include=ca-certificates "$suite" "$root" "$MIRROR" \
        >"$work/$suite-debootstrap.log" 2>&1; then
        tail -n 20 "$work/$suite-debootstrap.log" >&2
        echo "error: debootstrap $suite failed; the whole log is $work/$suite-debootstrap.log" >&2
        return 1
    fi
    # Package lists inside the image: the tests' `apt-get update` is then
    # an up-to-date check, not a download of the whole index.
    local sources="deb $MIRROR $suite main"
    echo "$sources" >"$root/etc/apt/sources.list"
    cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    if ! chroot "$root" apt-get update -qq >>"$work/$suite-debootstrap.log" 2>&1; then
        tail -n 20 "$work/$suite-debootstrap.log" >&2
        echo "error: apt-get update inside the $suite root failed; see $work/$suite-debootstrap.log" >&2
        return 1
    fi
    rm -f "$root/etc/resolv.conf"
    rm -rf "$root/var/cache/apt/archives/"*.deb
    echo "==> docker import $image"
    tar -C "$root" -c . | docker import - "$image" >/dev/null
    rm -rf "$root"
}

make_image bookworm restic-manager-test/debian-12:clean
make_image trixie restic-manager-test/debian-13:clean

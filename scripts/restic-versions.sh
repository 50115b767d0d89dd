#!/usr/bin/env bash
# Fetches the restic versions the test matrix runs against and caches each
# as target/restic/<VER>/restic:
#
#   0.14  Debian 12 (bookworm), the system's /usr/bin/restic (apt-get install restic)
#   0.18  Debian 13 (trixie), restic 0.18.0
#   0.19  Debian unstable (sid), restic 0.19.1
#
# 0.18 and 0.19 come from Debian's archive through a private apt
# configuration under target/apt-<suite>: the machine's own sources, lists
# and package state are never touched, and the archive key of the system
# (debian-archive-keyring) verifies what is downloaded. The binaries are
# static Go programs. A cached binary whose version matches is kept: a
# second run does nothing and takes milliseconds.
#
# Usage: scripts/restic-versions.sh [VER...]   (default: 0.14 0.18 0.19)
# Prints one line per version: `VER DIR`, where DIR/restic is that restic.
set -euo pipefail
cd "$(dirname "$0")/.."

# Which Debian suite ships which restic, and the version `restic version`
# must print.
suite_of() {
    case "$1" in
    0.14) echo bookworm ;;
    0.18) echo trixie ;;
    0.19) echo sid ;;
    *)
        echo "error: unknown restic version \`$1\` (known: 0.14 0.18 0.19)" >&2
        return 2
        ;;
    esac
}

# The machine's configured Debian mirror (deb822 or one-line sources).
mirror() {
    local m=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        m=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list.d/*.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/ && $i !~ /security/) { print $i; exit } }' /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}

# has VER FILE: FILE runs and is restic VER.
has() {
    [ -x "$2" ] && "$2" version 2>/dev/null | grep -q "^restic $1\."
}

fetch() {
    local ver=$1 dir="target/restic/$1"
    local bin="$dir/restic"
    if has "$ver" "$bin"; then
        echo "$ver $PWD/$dir"
        return 0
    fi
    mkdir -p "$dir"
    if [ "$ver" = 0.14 ]; then
        # Debian 12's own package: what test-all.sh installs.
        local sys
        sys=$(command -v restic || true)
        if [ -z "$sys" ] || ! has 0.14 "$sys"; then
            echo "error: restic 0.14 is not the system's restic (\`apt-get install restic\` on Debian 12 gives it)" >&2
            return 1
        fi
        ln -sfn "$sys" "$bin"
        echo "$ver $PWD/$dir"
        return 0
    fi
    local suite a
    suite=$(suite_of "$ver")
    a="$PWD/target/apt-$suite"
    mkdir -p "$a/lists/partial" "$a/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(mirror) $suite main" >"$a/sources.list"
    local o=(-o "Dir::Etc::SourceList=$a/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$a/lists" -o "Dir::Cache::Archives=$a/archives"
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o "Dir::State::Status=$a/status")
    # Downloads into target/ are not readable by apt's sandbox user `_apt`.
    [ "$(id -u)" -ne 0 ] || o+=(-o APT::Sandbox::User=root)
    : >"$a/status"
    echo "==> restic $ver: apt-get download restic from $suite" >&2
    apt-get "${o[@]}" update -qq >&2
    rm -f "$a"/restic_*.deb
    (cd "$a" && apt-get "${o[@]}" download restic >&2)
    rm -rf "$a/x"
    dpkg-deb -x "$a"/restic_*.deb "$a/x"
    install -m 0755 "$a/x/usr/bin/restic" "$bin.tmp"
    mv "$bin.tmp" "$bin"
    if ! has "$ver" "$bin"; then
        echo "error: $suite's restic is not $ver: $("$bin" version 2>&1 | head -1)" >&2
        return 1
    fi
    echo "$ver $PWD/$dir"
}

vers=("$@")
[ "${#vers[@]}" -gt 0 ] || vers=(0.14 0.18 0.19)
for v in "${vers[@]}"; do
    fetch "$v"
done

#!/usr/bin/env bash
# Installs restic-manager for the user who runs it, without sudo: the binary,
# a starter configuration (only when there is none), bash completion and the
# man pages, all under the user's home. Run as root, it installs system-wide
# into the usual FHS places instead. Safe to run again: it updates the
# binary, completion and man pages and never touches an existing config.
#
# The binary: $RM_BIN when set, else a release build (`cargo build
# --release`), else an existing target/release/restic-manager.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

case "${1:-}" in
    -h | --help)
        sed -n '2,9s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    "") ;;
    *)
        echo "error: unknown argument \`$1\`; scripts/install.sh takes none (set RM_BIN to install a given binary)" >&2
        exit 2
        ;;
esac

if [ "$(id -u)" -eq 0 ]; then
    bin_dir=/usr/local/bin
    config=/etc/restic-manager/config.toml
    completion_dir=/usr/share/bash-completion/completions
    man_dir=/usr/local/share/man/man1
else
    : "${HOME:?HOME is not set}"
    data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
    bin_dir="$HOME/.local/bin"
    config="${XDG_CONFIG_HOME:-$HOME/.config}/restic-manager/config.toml"
    completion_dir="$data_home/bash-completion/completions"
    man_dir="$data_home/man/man1"
fi

# --- which binary --------------------------------------------------------
if [ -n "${RM_BIN:-}" ]; then
    src="$RM_BIN"
    if [ ! -x "$src" ]; then
        echo "error: RM_BIN=\`$src\` is not an executable file" >&2
        exit 1
    fi
elif need_cargo 2>/dev/null; then
    echo "==> building restic-manager (release)"
    cargo build --release --quiet
    src="$PWD/target/release/restic-manager"
elif [ -x target/release/restic-manager ]; then
    src="$PWD/target/release/restic-manager"
    echo "==> cargo not found; installing the existing build \`$src\`"
else
    echo "error: no cargo and no build in target/release; install Rust 1.89 or newer (https://rustup.rs), or set RM_BIN to a restic-manager binary, then run this again" >&2
    exit 1
fi

# --- binary --------------------------------------------------------------
dest="$bin_dir/restic-manager"
mkdir -p "$bin_dir"
if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
    echo "==> binary \`$dest\` is up to date"
else
    # Copy then rename, so a running restic-manager (a cron job) keeps its
    # old file and never sees a half-written one.
    tmp="$bin_dir/.restic-manager.tmp.$$"
    install -m 0755 "$src" "$tmp"
    mv -f "$tmp" "$dest"
    echo "==> installed \`$dest\`"
fi

# --- starter configuration (never overwritten) ----------------------------
if [ -e "$config" ]; then
    echo "==> keeping your configuration \`$config\` (never overwritten; config.example.toml lists every key)"
else
    # Private: setup puts the repository password next to it.
    [ -d "$(dirname "$config")" ] || install -d -m 0700 "$(dirname "$config")"
    install -m 0600 config.example.toml "$config"
    echo "==> wrote a starter configuration \`$config\` from config.example.toml; edit it"
fi

# --- bash completion -----------------------------------------------------
mkdir -p "$completion_dir"
tmp="$completion_dir/.restic-manager.tmp.$$"
"$dest" completions bash >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$completion_dir/restic-manager"
echo "==> bash completion \`$completion_dir/restic-manager\` (new shells pick it up)"

# --- man pages -----------------------------------------------------------
mkdir -p "$man_dir"
"$dest" man --out "$man_dir" >/dev/null
echo "==> man pages in \`$man_dir\` (\`man restic-manager\`)"

# --- what is left to do ---------------------------------------------------
case ":${PATH:-}:" in
    *":$bin_dir:"*) ;;
    *)
        echo "warning: \`$bin_dir\` is not on your PATH; add this line to ~/.profile (or ~/.bashrc) and open a new shell:" >&2
        # Written with a literal $HOME and $PATH: the user's shell expands them.
        echo "    export PATH=\"${bin_dir/#"$HOME"/\$HOME}:\$PATH\"" >&2
        ;;
esac
if ! command -v restic >/dev/null 2>&1; then
    echo "note: restic itself is not on PATH; restic-manager needs restic 0.14 or newer (sudo apt-get install restic)" >&2
fi
cat <<DONE
Done. Next: edit \`$config\`, then
    restic-manager validate && restic-manager setup && restic-manager run
DONE

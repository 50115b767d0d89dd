#!/usr/bin/env bash
# Installs restic-manager for the user who runs it, without sudo: the binary,
# a starter configuration (only when there is none), bash completion and the
# man pages, all under the user's home. Run as root, it installs system-wide
# into the usual FHS places instead. Safe to run again: it updates the
# binary, completion and man pages and never touches an existing config.
#
# Works from a clone and from an unpacked release tarball
# (restic-manager-VERSION-ARCH-linux.tar.gz, made by scripts/build-release.sh).
# The binary: $RM_BIN when set; else the tarball's bin/restic-manager (no
# Rust toolchain needed); else a release build (`cargo build --release`);
# else an existing target/release/restic-manager.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

case "${1:-}" in
    -h | --help)
        sed -n '2,12s/^# \{0,1\}//p' "$0"
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
elif [ -x bin/restic-manager ] && [ ! -e Cargo.toml ]; then
    # An unpacked release tarball: everything is built already.
    src="$PWD/bin/restic-manager"
    echo "==> installing the release binary \`$src\` ($("$src" --version))"
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
if [ -f share/completions/restic-manager.bash ] && [ ! -e Cargo.toml ]; then
    cat share/completions/restic-manager.bash >"$tmp"
else
    "$dest" completions bash >"$tmp"
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$completion_dir/restic-manager"
echo "==> bash completion \`$completion_dir/restic-manager\` (new shells pick it up)"

# --- man pages -----------------------------------------------------------
mkdir -p "$man_dir"
if [ -f share/man/man1/restic-manager.1 ] && [ ! -e Cargo.toml ]; then
    install -m 0644 share/man/man1/*.1 "$man_dir/"
else
    "$dest" man --out "$man_dir" >/dev/null
fi
echo "==> man pages in \`$man_dir\` (\`man restic-manager\`)"

# --- the dashboard's systemd unit (installed, never enabled) ---------------
# From the release tarball (systemd/) or a clone (packaging/systemd/), with
# ExecStart pointing at the binary just installed.
unit_kit=""
for d in systemd packaging/systemd; do
    if [ -f "$d/user/restic-manager-serve.service" ]; then
        unit_kit=$d
        break
    fi
done
if [ -n "$unit_kit" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        unit_src="$unit_kit/restic-manager-serve.service"
        unit_dir=/etc/systemd/system
        enable="systemctl enable --now restic-manager-serve"
    else
        unit_src="$unit_kit/user/restic-manager-serve.service"
        unit_dir="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"
        enable="systemctl --user enable --now restic-manager-serve"
    fi
    mkdir -p "$unit_dir"
    tmp="$unit_dir/.restic-manager-serve.tmp.$$"
    sed "s#^ExecStart=/usr/bin/restic-manager #ExecStart=$dest #" "$unit_src" >"$tmp"
    chmod 0644 "$tmp"
    mv -f "$tmp" "$unit_dir/restic-manager-serve.service"
    echo "==> dashboard unit \`$unit_dir/restic-manager-serve.service\` (not enabled; after \`restic-manager setup\`: $enable)"
fi

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

# Shared by the set-up scripts: install Debian packages that are missing.
# shellcheck shell=bash

# Runs a command as root (directly, or through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "error: need root to run: $*; run as root or install sudo" >&2
        return 1
    fi
}

# apt_install PKG... installs the packages that are not installed yet.
apt_install() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "==> installing ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# need_cargo fails with advice when no Rust toolchain is available.
need_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -x "$HOME/.cargo/bin/cargo" ]; then
            export PATH="$HOME/.cargo/bin:$PATH"
        else
            echo "error: cargo not found; install Rust 1.89 or newer (https://rustup.rs), then run this again" >&2
            return 1
        fi
    fi
}

# python_venv DIR PKG... makes a Python virtual environment in DIR with the
# PyPI packages PKG (pip quiet), unless DIR already imports the first
# package's module (MODULE, set by the caller: python_venv DIR MODULE PKG...).
# Any python3 with a working `venv` module will do (pyenv's, or Debian's,
# which needs python3-venv).
python_venv() {
    local dir=$1 module=$2
    shift 2
    if [ -x "$dir/bin/python" ] && "$dir/bin/python" -c "import $module" 2>/dev/null; then
        return 0
    fi
    echo "==> creating Python environment $dir ($*)"
    rm -rf "$dir"
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 && "$py" -m venv "$dir" 2>/dev/null; then
            break
        fi
        rm -rf "$dir"
    done
    if [ ! -x "$dir/bin/pip" ]; then
        echo "error: cannot create a Python venv; install python3-venv" >&2
        return 1
    fi
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
}

# The Docker tests need a running engine. Machines of this kind start one;
# where the package is installed but the daemon is not running (a fresh
# container, no systemd), start it in the background and wait for it.
ensure_docker_engine() {
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    apt_install docker.io
  fi
  if docker info >/dev/null 2>&1; then
    return 0
  fi
  echo "==> starting dockerd (log: /tmp/restic-manager-dockerd.log)"
  nohup dockerd >/tmp/restic-manager-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  echo "error: the Docker engine did not start; see /tmp/restic-manager-dockerd.log" >&2
  return 1
}

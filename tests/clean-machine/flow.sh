#!/bin/bash
# Runs inside a clean Debian container (scripts/clean-machines.sh), as root:
# installs restic-manager the way a user would, runs the quickstart flow as
# an unprivileged user, starts the dashboard with the shipped systemd unit's
# command (there is no systemd in the container) and, for the package,
# purges it and checks that the user's data is still there.
#
#   flow.sh deb      apt-get install ./restic-manager_VERSION_ARCH.deb
#   flow.sh tarball  apt-get install restic, then the release tarball's
#                    scripts/install.sh as the user (no cargo)
#
# Expects the artifacts of scripts/build-release.sh read-only in /artifacts
# and RM_PORT, a free TCP port (the container may share the host's network).
# Driven by tests/cli/packages.rs, which asserts on what this prints: lines
# starting with `== ` name steps, `RESULT key value` lines are facts.
set -euo pipefail

mode=${1:?usage: flow.sh deb|tarball}
port=${RM_PORT:?RM_PORT (a free TCP port) is not set}
user=alice
home=/home/$user

step() { echo "== $*"; }
result() { echo "RESULT $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Runs a command as the user, with a login-like environment (HOME, USER,
# PATH with ~/.local/bin) and nothing inherited from root.
as_user() {
    setpriv --reuid="$user" --regid="$user" --init-groups --reset-env \
        env PATH="$home/.local/bin:/usr/local/bin:/usr/bin:/bin" "$@"
}

# http_get PORT PATH TOKEN_FILE: prints the status line, then the body.
# bash's /dev/tcp: no curl needed, and the token is never in an argv.
http_get() {
    local token
    token=$(<"$3")
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n' "$2" "$token" >&3
    local answer
    answer=$(cat <&3)
    exec 3<&-
    printf '%s\n' "$answer" | head -n 1 | tr -d '\r'
    printf '%s\n' "$answer" | sed '1,/^\r\{0,1\}$/d'
}

wait_for_port() {
    local i
    for i in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# serve_from_unit UNIT PORT TOKEN_FILE AS: runs the unit's ExecStart with its
# Environment= lines, as AS (`user` or `root`), fetches /api/status with the
# token, stops it with SIGTERM as systemd would, and prints the answer.
serve_from_unit() {
    local unit=$1 port=$2 token_file=$3 who=$4
    local exec_start env_lines
    exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
    env_lines=$(sed -n 's/^Environment=//p' "$unit" | tr '\n' ' ')
    [ -n "$exec_start" ] || fail "no ExecStart= in $unit"
    result "unit_exec $who $exec_start"
    local log=/tmp/serve-$who.log
    # Word splitting wanted: the unit's values hold no spaces.
    # shellcheck disable=SC2086
    # Simple commands (no function, no subshell): $! is the server itself.
    if [ "$who" = user ]; then
        setpriv --reuid="$user" --regid="$user" --init-groups --reset-env \
            env PATH="$home/.local/bin:/usr/local/bin:/usr/bin:/bin" $env_lines $exec_start >"$log" 2>&1 &
    else
        env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin $env_lines $exec_start >"$log" 2>&1 &
    fi
    local pid=$!
    if ! wait_for_port "$port"; then
        cat "$log" >&2
        fail "the dashboard ($exec_start) did not listen on 127.0.0.1:$port within 20 s"
    fi
    local answer
    answer=$(http_get "$port" /api/status "$token_file")
    result "api_status_line $who $(head -n 1 <<<"$answer")"
    result "api_status_body $who $(tail -n +2 <<<"$answer" | tr -d '\n')"
    kill -TERM "$pid"
    local code=0
    wait "$pid" || code=$?
    result "serve_exit $who $code"
    sed 's/^/    serve: /' "$log"
}

step "machine: $(. /etc/os-release && echo "$PRETTY_NAME")"
for tool in cargo rustc cc gcc make; do
    if command -v "$tool" >/dev/null 2>&1; then
        fail "$tool is installed: this is not a clean machine"
    fi
done
result "toolchain none"
(cd /artifacts && sha256sum -c SHA256SUMS)

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
useradd -m -s /bin/bash "$user"

if [ "$mode" = deb ]; then
    step "apt-get install ./restic-manager_*.deb"
    # apt reads local packages as its own unprivileged user: give it a copy.
    cp /artifacts/restic-manager_*.deb /tmp/
    chmod 0644 /tmp/restic-manager_*.deb
    deb=$(ls /tmp/restic-manager_*.deb)
    result "deb_depends $(dpkg-deb -f "$deb" Depends)"
    result "deb_recommends $(dpkg-deb -f "$deb" Recommends)"
    result "deb_installed_size_kb $(dpkg-deb -f "$deb" Installed-Size)"
    dpkg-query -W -f='${Package}\n' | sort >/tmp/before.txt
    (cd /tmp && apt-get install -y -qq "./$(basename "$deb")") >/tmp/apt.log 2>&1 ||
        {
            cat /tmp/apt.log >&2
            fail "apt-get install of the package failed"
        }
    # What apt added: restic-manager, restic, and whatever they pull in.
    result "apt_new_packages $(dpkg-query -W -f='${Package}\n' | sort | comm -13 /tmp/before.txt - | tr '\n' ' ')"
    for f in /usr/bin/restic-manager \
        /usr/share/man/man1/restic-manager.1.gz /usr/share/man/man1/restic-manager-run.1.gz \
        /usr/share/bash-completion/completions/restic-manager \
        /usr/share/zsh/vendor-completions/_restic-manager \
        /usr/share/fish/vendor_completions.d/restic-manager.fish \
        /usr/share/doc/restic-manager/config.example.toml \
        /usr/share/doc/restic-manager/docs/README.md \
        /usr/share/doc/restic-manager/examples/home-server.toml \
        /usr/lib/systemd/system/restic-manager-serve.service \
        /usr/lib/systemd/user/restic-manager-serve.service; do
        [ -f "$f" ] || fail "the package did not install $f"
        result "file $f"
    done
    zcat /usr/share/man/man1/restic-manager.1.gz | grep -q '^\.TH restic-manager 1' ||
        fail "restic-manager.1.gz is not a man page"
    rm_bin=/usr/bin/restic-manager
    user_unit=/usr/lib/systemd/user/restic-manager-serve.service
else
    step "tarball: apt-get install restic, then scripts/install.sh as $user"
    apt-get install -y -qq restic >/tmp/apt.log 2>&1 ||
        {
            cat /tmp/apt.log >&2
            fail "apt-get install restic failed"
        }
    tarball=$(ls /artifacts/restic-manager-*.tar.gz)
    as_user tar -C "$home" -xzf "$tarball"
    kit=$(ls -d "$home"/restic-manager-*-linux)
    as_user "$kit/scripts/install.sh"
    rm_bin=$home/.local/bin/restic-manager
    [ -x "$rm_bin" ] || fail "install.sh did not install $rm_bin"
    for f in "$home/.local/share/bash-completion/completions/restic-manager" \
        "$home/.local/share/man/man1/restic-manager.1" \
        "$home/.config/systemd/user/restic-manager-serve.service"; do
        [ -f "$f" ] || fail "install.sh did not install $f"
        result "file $f"
    done
    user_unit=$home/.config/systemd/user/restic-manager-serve.service
fi
result "restic $(restic version)"
result "restic_manager $(as_user "$rm_bin" --version)"

step "quickstart as $user (uid $(id -u "$user"))"
as_user mkdir -p "$home/docs/notes" "$home/.config/restic-manager"
as_user sh -c "echo 'dear restic' > $home/docs/notes/letter.txt"
as_user sh -c "head -c 300000 /dev/urandom > $home/docs/photo.raw"
as_user sh -c "cat > $home/.config/restic-manager/config.toml" <<TOML
# alice's own configuration
[global]
restic_password_file = "~/.config/restic-manager/restic-password"

[destinations.local]
type = "local"
path = "$home/backups"

[services.docs]
description = "alice's documents"
targets = ["local"]
schedule = "30 2 * * *"

[services.docs.config]
paths = ["$home/docs"]

[web]
listen = "127.0.0.1:$port"
TOML
for cmd in "validate" "setup --no-schedule" "run" "verify --drill" "status"; do
    step "restic-manager $cmd"
    # shellcheck disable=SC2086
    as_user "$rm_bin" $cmd
done
step "restic-manager status --json"
result "status_json $(as_user "$rm_bin" status --json | tr -d '\n')"
step "restic-manager restore"
as_user "$rm_bin" restore --service docs --snapshot latest \
    --include "$home/docs/photo.raw" --target "$home/restored"
if cmp "$home/docs/photo.raw" "$home/restored$home/docs/photo.raw"; then
    result "restored_identical yes"
else
    fail "the restored file differs from the original"
fi

step "dashboard: the user unit's command"
serve_from_unit "$user_unit" "$port" "$home/.local/state/restic-manager/web-token" user

if [ "$mode" = deb ]; then
    step "dashboard: the system unit's command, as root, for /etc/restic-manager/config.toml"
    mkdir -p /etc/restic-manager /srv/data
    echo "server data" >/srv/data/file.txt
    sysport=$((port + 1))
    cat >/etc/restic-manager/config.toml <<TOML
[global]
restic_password_file = "/etc/restic-manager/restic-password"

[destinations.local]
type = "local"
path = "/srv/backups"

[services.server]
targets = ["local"]

[services.server.config]
paths = ["/srv/data"]

[web]
listen = "127.0.0.1:$sysport"
TOML
    HOME=/root restic-manager setup --no-schedule
    # What systemd makes for StateDirectory= and CacheDirectory=.
    install -d -m 0700 /var/lib/restic-manager /var/cache/restic-manager
    serve_from_unit /usr/lib/systemd/system/restic-manager-serve.service "$sysport" \
        /var/lib/restic-manager/web-token root

    step "apt-get purge restic-manager"
    apt-get purge -y -qq restic-manager >/tmp/purge.log 2>&1 ||
        {
            cat /tmp/purge.log >&2
            fail "apt-get purge failed"
        }
    if [ -e /usr/bin/restic-manager ] || dpkg -s restic-manager >/dev/null 2>&1; then
        fail "restic-manager is still installed after purge"
    fi
    result "purged yes"
    for f in "$home/.config/restic-manager/config.toml" \
        "$home/.config/restic-manager/restic-password" \
        "$home/backups/docs/config" \
        "$home/.local/state/restic-manager/history.sqlite" \
        /etc/restic-manager/config.toml /etc/restic-manager/restic-password \
        /srv/backups/server/config; do
        [ -f "$f" ] || fail "$f is gone after the purge"
        result "kept $f"
    done
    # The repository is still readable with the kept password, by restic alone.
    n=$(as_user env RESTIC_REPOSITORY="$home/backups/docs" \
        RESTIC_PASSWORD_FILE="$home/.config/restic-manager/restic-password" \
        restic snapshots --json | grep -o '"short_id"' | wc -l)
    result "snapshots_after_purge $n"
fi
echo "FLOW OK $mode"

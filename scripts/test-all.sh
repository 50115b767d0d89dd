#!/usr/bin/env bash
# Command 2 of the README (and all that .ci/run does): install every test
# dependency, check formatting and lints, and run the whole test suite
# against real components.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# restic: the real binary the tests drive; sqlite3: tests read history
# through it, independently of our code; cron: the scheduling test
# (tests/cli/schedule.rs) installs a real crontab and lets the daemon fire.
apt_install restic sqlite3 ca-certificates procps util-linux cron
# Real servers for the destination tests (tests/cli/servers.rs): sshd for
# SFTP, rclone for REST and rclone remotes, moto (PyPI) for S3.
apt_install openssh-server openssh-client rclone python3-venv
# prometheus provides `promtool`, which checks the metrics the tests write
# (tests/cli/metrics.rs); hyperfine times bench/status.sh.
apt_install prometheus hyperfine
# openssl makes the throwaway CA of the SMTP-over-TLS tests (tests/cli/notify.rs).
apt_install openssl
python_venv target/test-venv 'moto, aiosmtpd' 'moto[server]' aiosmtpd
# The dashboard's browser test (tests/cli/browser.rs): headless Chromium
# driven through chromedriver; a font so pages render in screenshots.
apt_install chromium chromium-driver fonts-dejavu-core
# Docker tests (tests/cli/docker.rs): the machine's engine, and a test image
# built with `docker import` from Debian's static busybox (no registry).
apt_install busybox-static
ensure_docker_engine
# Database servers for the dump tests (tests/cli/databases.rs starts private
# clusters on loopback ports).
apt_install postgresql mariadb-server mariadb-client
export RM_MOTO_SERVER="$PWD/target/test-venv/bin/moto_server"
# aiosmtpd (same venv): the SMTP receiver of the email notification test.
export RM_TEST_PYTHON="$PWD/target/test-venv/bin/python"
need_cargo

echo "==> restic: $(restic version)"
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
echo "==> cargo test"
export CI="${CI:-false}"
cargo test --all-targets -- --test-threads="${TEST_THREADS:-4}"

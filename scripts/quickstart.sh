#!/usr/bin/env bash
# Command 1 of the README: install what is missing (restic from Debian),
# build restic-manager, and run a real first backup of a sample folder to a
# local repository, then show `status`.
#
# Everything goes under one folder (default: a new temp folder; set
# RM_DEMO_DIR to choose). Your own ~/.config is not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

apt_install restic ca-certificates
need_cargo
echo "==> building restic-manager (release)"
cargo build --release --quiet
bin="$PWD/target/release/restic-manager"

demo="${RM_DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/restic-manager-demo.XXXXXX")}"
mkdir -p "$demo/sample/notes" "$demo/sample/photos"
for i in 1 2 3; do
    echo "note $i written $(date -u +%FT%TZ)" >"$demo/sample/notes/note-$i.txt"
done
head -c 200000 /dev/urandom >"$demo/sample/photos/picture.raw"
cat >"$demo/config.toml" <<TOML
# A first configuration: one service, one local repository.
[global]
restic_password_file = "$demo/restic-password"
state_directory = "$demo/state"
retention_daily = 7
retention_weekly = 4

[destinations.local]
type = "local"
path = "$demo/repositories"
description = "local demo repository"

[services.sample]
description = "the sample folder"
targets = ["local"]
schedule = "30 2 * * *"

[services.sample.config]
paths = ["$demo/sample"]
TOML

rmgr() { "$bin" --config "$demo/config.toml" "$@"; }
echo "==> restic-manager validate"; rmgr validate
echo "==> restic-manager setup";    rmgr setup --no-schedule   # a demo: no cron job
echo "==> restic-manager run";      rmgr run
echo "==> restic-manager verify";   rmgr verify --drill
echo "==> restic-manager status";   rmgr status
echo "==> restic-manager snapshots"; rmgr snapshots
echo "==> restic-manager restore --preview"
(cd "$demo" && rmgr restore --service sample --snapshot latest --preview)
cat <<DONE

Done. Your first backup is in $demo/repositories/sample.
Restore it:  cd $demo && $bin --config $demo/config.toml restore --service sample --snapshot latest
Try:  $bin --config $demo/config.toml --help
Next: copy config.example.toml to ~/.config/restic-manager/config.toml and
describe your own services.
DONE

#!/usr/bin/env bash
# Builds what a user installs without a Rust toolchain, into
# target/release-artifacts/ (RM_ARTIFACTS to choose another folder):
#   restic-manager_VERSION_amd64.deb          (cargo deb; `apt install ./…deb`)
#   restic-manager-VERSION-x86_64-linux.tar.gz (binary, completions, man
#                                              pages, systemd units, install script,
#                                              the manual and the examples)
#   SHA256SUMS                                (`sha256sum -c SHA256SUMS`)
# One release build (`cargo build --release --locked`, stripped) feeds both;
# man pages and completions are generated from that binary. Installs
# cargo-deb (`cargo install cargo-deb --locked`) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

case "${1:-}" in
    -h | --help)
        sed -n '2,10s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    "") ;;
    *)
        echo "error: unknown argument \`$1\`; scripts/build-release.sh takes none" >&2
        exit 2
        ;;
esac

need_cargo
# dpkg-shlibdeps (dpkg-dev) computes the package's library dependencies.
apt_install dpkg-dev
if ! cargo deb --version >/dev/null 2>&1; then
    echo "==> installing cargo-deb (cargo install cargo-deb --locked; a few minutes, once)"
    cargo install cargo-deb --locked --quiet
fi

version=$(awk -F'"' '/^version *=/ {print $2; exit}' Cargo.toml)
arch=$(uname -m)
case "$arch" in
    x86_64) deb_arch=amd64 ;;
    aarch64) deb_arch=arm64 ;;
    *) deb_arch=$arch ;;
esac
out="${RM_ARTIFACTS:-target/release-artifacts}"
gen=target/packaging

echo "==> cargo build --release (restic-manager $version)"
cargo build --release --locked --quiet
bin=target/release/restic-manager

# Cached: artifacts newer than the binary and than every file packed with it
# are kept (the clean-machine tests call this script; RM_REBUILD=1 forces).
sums="$out/SHA256SUMS"
if [ "${RM_REBUILD:-0}" != 1 ] && [ -f "$sums" ] &&
    [ -z "$(find "$bin" Cargo.toml README.md config.example.toml docs examples scripts/install.sh \
        scripts/lib.sh scripts/build-release.sh packaging -newer "$sums" -print -quit)" ]; then
    echo "==> $out is up to date (RM_REBUILD=1 builds it anew):"
    sed 's/^/    /' "$sums"
    exit 0
fi

# --- generated assets (from the binary, so they match --help) -------------
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/deb/man" "$gen/completions"
"$bin" man --out "$gen/man" >/dev/null
"$bin" completions bash >"$gen/completions/restic-manager.bash"
"$bin" completions zsh >"$gen/completions/_restic-manager"
"$bin" completions fish >"$gen/completions/restic-manager.fish"
# Debian keeps man pages gzip-compressed (-n: no time stamp inside).
for page in "$gen/man"/*.1; do
    gzip -9n <"$page" >"$gen/deb/man/$(basename "$page").gz"
done

mkdir -p "$out"
rm -f "$out"/restic-manager_*.deb "$out"/restic-manager-*.tar.gz "$out/SHA256SUMS"

# --- .deb -----------------------------------------------------------------
deb="restic-manager_${version}_${deb_arch}.deb"
echo "==> cargo deb → $out/$deb"
cargo deb --no-build --quiet --output "$out/$deb" >/dev/null

# --- tarball: the layout of a clone, so scripts/install.sh works in it ----
name="restic-manager-$version-$arch-linux"
stage="$gen/$name"
mkdir -p "$stage/bin" "$stage/scripts" "$stage/share/man/man1" "$stage/share/completions" "$stage/systemd/user" \
    "$stage/docs" "$stage/examples"
install -m 0755 "$bin" "$stage/bin/restic-manager"
install -m 0755 scripts/install.sh "$stage/scripts/install.sh"
install -m 0644 scripts/lib.sh "$stage/scripts/lib.sh"
install -m 0644 config.example.toml README.md "$stage/"
# The manual and the examples, where README.md's relative links expect them.
install -m 0644 docs/*.md "$stage/docs/"
install -m 0644 examples/*.toml examples/README.md "$stage/examples/"
install -m 0644 "$gen/man"/*.1 "$stage/share/man/man1/"
install -m 0644 "$gen/completions"/* "$stage/share/completions/"
install -m 0644 packaging/systemd/restic-manager-serve.service "$stage/systemd/"
install -m 0644 packaging/systemd/user/restic-manager-serve.service "$stage/systemd/user/"
echo "==> tarball → $out/$name.tar.gz"
tar -C "$gen" --owner=0 --group=0 --numeric-owner --sort=name \
    --mtime="@$(git log -1 --format=%ct 2>/dev/null || date +%s)" \
    -czf "$out/$name.tar.gz" "$name"

(cd "$out" && sha256sum "$deb" "$name.tar.gz" >SHA256SUMS)
echo "==> $out:"
(cd "$out" && ls -l "$deb" "$name.tar.gz" SHA256SUMS | awk '{print "    " $5 "  " $9}')

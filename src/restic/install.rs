//! The managed restic binary: learn the latest release, download the
//! platform archive, check it against the release's `SHA256SUMS`, and
//! install it as `bin/restic-<V>` under the data directory, switching the
//! `bin/restic` link with one `rename` so that a failed update leaves the
//! old binary in place and working.
//!
//! Nothing is written to the binary folder before the checksum matched and
//! the new binary answered `restic version` with the expected version.
//! HTTP runs on the runtime `main` built (reqwest is async); decompression
//! goes to a blocking thread.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::binary::{MIN_VERSION, Version};
use crate::config::Settings;
use crate::config::resolve::{DEFAULT_DOWNLOAD_BASE, DEFAULT_RELEASE_API};
use crate::process::{Shutdown, Spec};

/// Overrides `[global] restic_release_api`.
pub const ENV_RELEASE_API: &str = "RESTIC_MANAGER_RELEASE_API";
/// Overrides `[global] restic_download_base`.
pub const ENV_DOWNLOAD_BASE: &str = "RESTIC_MANAGER_DOWNLOAD_BASE";
/// Seconds to wait for a connection and, separately, for each read.
pub const ENV_HTTP_TIMEOUT: &str = "RESTIC_MANAGER_HTTP_TIMEOUT_SECONDS";
/// Default for [`ENV_HTTP_TIMEOUT`].
pub const DEFAULT_HTTP_TIMEOUT_SECONDS: u64 = 30;
/// The name of the link (the binary restic-manager runs) in the bin folder.
pub const LINK_NAME: &str = "restic";

/// What went wrong fetching or installing restic. Every variant says that
/// nothing was installed where that is the case, and what to try next.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("`{0}` is not a restic version like `0.17.3`")]
    BadVersion(String),
    #[error("restic {0} is too old; restic-manager needs {MIN_VERSION} or newer")]
    TooOld(Version),
    #[error(
        "no restic release is published for `{0}`; install restic yourself and set `[global] restic_binary`"
    )]
    Platform(String),
    #[error("`{name}` must be an http:// or https:// URL, not `{value}`")]
    BadBase { name: String, value: String },
    #[error("`{0}` must be a whole number of seconds greater than 0")]
    BadTimeout(String),
    #[error("cannot set up HTTP: {0}")]
    Client(String),
    #[error(
        "no answer from `{url}` within {seconds} s; nothing was installed; check the network or the mirror, or raise `{ENV_HTTP_TIMEOUT}`"
    )]
    Timeout { url: String, seconds: u64 },
    #[error(
        "cannot download `{url}`: {detail}; nothing was installed; check the network or the mirror"
    )]
    Http { url: String, detail: String },
    #[error(
        "`{url}` does not exist (HTTP 404); nothing was installed; check the version, or the mirror (`restic_download_base`, `{ENV_DOWNLOAD_BASE}`)"
    )]
    NotFound { url: String },
    #[error("`{url}` answered HTTP {status}; nothing was installed; try again later")]
    Status { url: String, status: u16 },
    #[error(
        "the download of `{url}` was cut short ({got} of {want} bytes); nothing was installed; try again"
    )]
    Truncated { url: String, got: u64, want: u64 },
    #[error("unexpected answer from `{url}`: {detail}")]
    BadAnswer { url: String, detail: String },
    #[error("`{url}` lists no checksum for `{asset}`; nothing was installed")]
    NoChecksum { url: String, asset: String },
    #[error(
        "checksum mismatch for `{asset}`: `SHA256SUMS` says {want}, the download has {got}; nothing was installed; the download or the mirror is corrupt, try again"
    )]
    Mismatch {
        asset: String,
        want: String,
        got: String,
    },
    #[error("cannot decompress `{asset}`: {detail}; nothing was installed")]
    Decompress { asset: String, detail: String },
    #[error("the downloaded restic does not work: {0}; nothing was installed")]
    Broken(String),
    #[error("the downloaded restic reports version {got}, not {want}; nothing was installed")]
    WrongVersion { want: String, got: String },
    #[error("cannot write `{path}`: {source}; check the folder's permissions")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> InstallError + '_ {
    move |source| InstallError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where releases come from, and how long to wait for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub api_base: String,
    pub download_base: String,
    pub timeout: Duration,
}

impl Mirror {
    /// The environment variables win over the configuration file (so a
    /// one-off run, or a test, can point at a mirror without editing it),
    /// which wins over the defaults.
    pub fn resolve(settings: Option<&Settings>) -> Result<Mirror, InstallError> {
        Self::resolve_with(settings, |k| std::env::var(k).ok())
    }

    fn resolve_with(
        settings: Option<&Settings>,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Mirror, InstallError> {
        let pick = |env: &str, configured: Option<&String>, default: &str| {
            let (name, value) = match var(env).filter(|v| !v.is_empty()) {
                Some(v) => (env.to_string(), v),
                None => (
                    String::new(),
                    configured.map_or(default, String::as_str).to_string(),
                ),
            };
            let value = value.trim_end_matches('/').to_string();
            if value.starts_with("https://") || value.starts_with("http://") {
                Ok(value)
            } else {
                Err(InstallError::BadBase { name, value })
            }
        };
        let api_base = pick(
            ENV_RELEASE_API,
            settings.map(|s| &s.restic_release_api),
            DEFAULT_RELEASE_API,
        )?;
        let download_base = pick(
            ENV_DOWNLOAD_BASE,
            settings.map(|s| &s.restic_download_base),
            DEFAULT_DOWNLOAD_BASE,
        )?;
        let seconds = match var(ENV_HTTP_TIMEOUT).filter(|v| !v.is_empty()) {
            None => DEFAULT_HTTP_TIMEOUT_SECONDS,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 => n,
                _ => return Err(InstallError::BadTimeout(ENV_HTTP_TIMEOUT.to_string())),
            },
        };
        Ok(Mirror {
            api_base,
            download_base,
            timeout: Duration::from_secs(seconds),
        })
    }

    /// The releases API document naming the latest release.
    pub fn latest_url(&self) -> String {
        format!("{}/repos/restic/restic/releases/latest", self.api_base)
    }

    /// The compressed binary of version `v` for `os`/`arch`.
    pub fn asset_url(&self, v: &str, asset: &str) -> String {
        format!("{}/v{v}/{asset}", self.download_base)
    }

    /// The release's checksum file.
    pub fn sums_url(&self, v: &str) -> String {
        format!("{}/v{v}/SHA256SUMS", self.download_base)
    }
}

/// restic's name for this platform: `(os, arch)` as in its asset names.
pub fn platform() -> Result<(&'static str, &'static str), InstallError> {
    platform_of(std::env::consts::OS, std::env::consts::ARCH)
}

fn platform_of(os: &str, arch: &str) -> Result<(&'static str, &'static str), InstallError> {
    let unsupported = || InstallError::Platform(format!("{os}/{arch}"));
    let os = match os {
        "linux" => "linux",
        "macos" => "darwin",
        "freebsd" => "freebsd",
        "openbsd" => "openbsd",
        "netbsd" => "netbsd",
        "solaris" => "solaris",
        // Windows releases are zip archives holding a versioned exe; the
        // rest of restic-manager is Unix-only for now.
        _ => return Err(unsupported()),
    };
    let arch = match arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "mips" => "mips",
        "mips64" => "mips64",
        _ => return Err(unsupported()),
    };
    Ok((os, arch))
}

/// The asset name of version `v`: `restic_0.17.3_linux_amd64.bz2`.
pub fn asset_name(v: &str, os: &str, arch: &str) -> String {
    format!("restic_{v}_{os}_{arch}.bz2")
}

/// Checks a version given by a user or a release tag (`v0.17.3` or
/// `0.17.3`) and returns it without the `v`.
pub fn parse_version(text: &str) -> Result<String, InstallError> {
    let v = text.trim().trim_start_matches('v');
    let parts: Vec<&str> = v.split('.').collect();
    let well_formed = parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.len() <= 6 && p.bytes().all(|b| b.is_ascii_digit()));
    let version = well_formed
        .then(|| Version::parse(&format!("restic {v}")))
        .flatten()
        .ok_or_else(|| InstallError::BadVersion(text.to_string()))?;
    if version < MIN_VERSION {
        return Err(InstallError::TooOld(version));
    }
    Ok(v.to_string())
}

/// The checksum of `asset` in a `sha256sum`-style file
/// (`<hex>  <name>`, or `<hex> *<name>` for binary mode).
pub fn find_checksum(sums: &str, asset: &str) -> Option<String> {
    sums.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        let hex = it.next()?;
        let name = it.next()?.trim_start_matches('*');
        (name == asset && hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hex.to_ascii_lowercase())
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An HTTP client with the mirror's timeouts.
pub fn client(mirror: &Mirror) -> Result<reqwest::Client, InstallError> {
    reqwest::Client::builder()
        .connect_timeout(mirror.timeout)
        .read_timeout(mirror.timeout)
        .user_agent(concat!("restic-manager/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| InstallError::Client(e.to_string()))
}

/// Reports download progress: `(bytes so far, total when known)`.
pub type OnProgress<'a> = &'a dyn Fn(u64, Option<u64>);

fn net_error(url: &str, e: &reqwest::Error, timeout: Duration) -> InstallError {
    if e.is_timeout() {
        return InstallError::Timeout {
            url: url.to_string(),
            seconds: timeout.as_secs(),
        };
    }
    // reqwest's own text repeats the URL; its innermost cause says what
    // happened ("Connection refused (os error 111)").
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    InstallError::Http {
        url: url.to_string(),
        detail,
    }
}

/// Downloads `url` completely into memory (a restic binary is ~10 MB).
async fn fetch(
    client: &reqwest::Client,
    mirror: &Mirror,
    url: &str,
    progress: Option<OnProgress<'_>>,
) -> Result<Vec<u8>, InstallError> {
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| net_error(url, &e, mirror.timeout))?;
    let status = resp.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Err(InstallError::NotFound {
            url: url.to_string(),
        });
    }
    if !status.is_success() {
        return Err(InstallError::Status {
            url: url.to_string(),
            status: status.as_u16(),
        });
    }
    let want = resp.content_length();
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                body.extend_from_slice(&c);
                if let Some(p) = progress {
                    p(body.len() as u64, want);
                }
            }
            Ok(None) => break,
            Err(e) if e.is_timeout() => return Err(net_error(url, &e, mirror.timeout)),
            // The server closed the connection before the announced length.
            Err(_) if want.is_some() => break,
            Err(e) => return Err(net_error(url, &e, mirror.timeout)),
        }
    }
    if let Some(want) = want
        && body.len() as u64 != want
    {
        return Err(InstallError::Truncated {
            url: url.to_string(),
            got: body.len() as u64,
            want,
        });
    }
    Ok(body)
}

/// The latest released version, from the releases API's `tag_name`.
pub async fn latest(client: &reqwest::Client, mirror: &Mirror) -> Result<String, InstallError> {
    let url = mirror.latest_url();
    let body = fetch(client, mirror, &url, None).await?;
    let doc: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| InstallError::BadAnswer {
            url: url.clone(),
            detail: format!("not JSON ({e})"),
        })?;
    let tag = doc
        .get("tag_name")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| InstallError::BadAnswer {
            url: url.clone(),
            detail: "no `tag_name`".to_string(),
        })?;
    parse_version(tag).map_err(|e| InstallError::BadAnswer {
        url,
        detail: e.to_string(),
    })
}

/// The version the managed link points at, if any.
pub fn current(bin_dir: &Path) -> Option<String> {
    let target = std::fs::read_link(bin_dir.join(LINK_NAME)).ok()?;
    let name = target.file_name()?.to_str()?;
    name.strip_prefix("restic-").map(str::to_string)
}

/// Versions installed in `bin_dir`, oldest first.
pub fn installed(bin_dir: &Path) -> Vec<String> {
    let mut out: Vec<(Version, String)> = std::fs::read_dir(bin_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let v = name.strip_prefix("restic-")?.to_string();
            Some((Version::parse(&format!("restic {v}"))?, v))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, v)| v).collect()
}

/// What [`install`] did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Installed {
    pub version: String,
    /// The versioned binary.
    pub path: PathBuf,
    /// The link restic-manager runs.
    pub link: PathBuf,
    /// The version the link pointed at before (still installed).
    pub previous: Option<String>,
    /// False when the versioned binary was already there.
    pub downloaded: bool,
    /// False when the link already pointed at this version.
    pub switched: bool,
}

/// Installs version `v` into `bin_dir` and points the link at it.
///
/// An existing `restic-<V>` is reused unless `force`. The order is what
/// makes a failed update harmless: download everything, verify the
/// checksum, write a temporary file, run it, rename it into place, and only
/// then switch the link (a new link renamed over the old one).
pub async fn install(
    client: &reqwest::Client,
    mirror: &Mirror,
    v: &str,
    bin_dir: &Path,
    force: bool,
    progress: Option<OnProgress<'_>>,
) -> Result<Installed, InstallError> {
    let (os, arch) = platform()?;
    let path = bin_dir.join(format!("restic-{v}"));
    let link = bin_dir.join(LINK_NAME);
    let previous = current(bin_dir);
    let reuse = !force && path.is_file();
    if !reuse {
        let asset = asset_name(v, os, arch);
        let sums_url = mirror.sums_url(v);
        let sums = fetch(client, mirror, &sums_url, None).await?;
        let want = find_checksum(&String::from_utf8_lossy(&sums), &asset).ok_or_else(|| {
            InstallError::NoChecksum {
                url: sums_url.clone(),
                asset: asset.clone(),
            }
        })?;
        let url = mirror.asset_url(v, &asset);
        let archive = fetch(client, mirror, &url, progress).await?;
        let got = hex(&Sha256::digest(&archive));
        if got != want {
            return Err(InstallError::Mismatch { asset, want, got });
        }
        let binary = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            bzip2::read::BzDecoder::new(archive.as_slice())
                .read_to_end(&mut out)
                .map(|_| out)
        })
        .await
        .map_err(|e| InstallError::Decompress {
            asset: asset.clone(),
            detail: e.to_string(),
        })?
        .map_err(|e| InstallError::Decompress {
            asset: asset.clone(),
            detail: e.to_string(),
        })?;
        std::fs::create_dir_all(bin_dir).map_err(io(bin_dir))?;
        let tmp = bin_dir.join(format!(".restic-{v}.partial-{}", std::process::id()));
        let placed = place(&tmp, &binary, v).await.and_then(|()| {
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            Ok(())
        });
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    }
    let switched = previous.as_deref() != Some(v);
    if switched {
        switch_link(bin_dir, v)?;
    }
    Ok(Installed {
        version: v.to_string(),
        path,
        link,
        previous,
        downloaded: !reuse,
        switched,
    })
}

/// Writes the binary to `tmp` with mode 0755 and checks that it runs and
/// reports version `v`.
async fn place(tmp: &Path, binary: &[u8], v: &str) -> Result<(), InstallError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o755)
        .open(tmp)
        .map_err(io(tmp))?;
    f.write_all(binary).map_err(io(tmp))?;
    f.sync_all().map_err(io(tmp))?;
    drop(f);
    let mut spec = Spec::new(tmp).arg("version");
    spec.timeout = Some(Duration::from_secs(60));
    let out = spec
        .run(&Shutdown::never(), |_| {}, |_| {})
        .await
        .map_err(|e| InstallError::Broken(e.to_string()))?;
    if !out.ended.success() {
        return Err(InstallError::Broken(format!(
            "`restic version` ended with {}",
            out.ended.describe()
        )));
    }
    let got = Version::parse(&out.stdout).ok_or_else(|| {
        InstallError::Broken(format!(
            "unexpected `restic version` output {:?}",
            out.stdout.trim()
        ))
    })?;
    if got.to_string() != v {
        return Err(InstallError::WrongVersion {
            want: v.to_string(),
            got: got.to_string(),
        });
    }
    Ok(())
}

/// Points `bin_dir/restic` at `restic-<v>` atomically: a new relative link
/// under a temporary name is renamed over the old one, so there is never a
/// moment without a working `restic`.
pub fn switch_link(bin_dir: &Path, v: &str) -> Result<(), InstallError> {
    let link = bin_dir.join(LINK_NAME);
    let tmp = bin_dir.join(format!(".restic.link-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("restic-{v}"), &tmp).map_err(io(&tmp))?;
    if let Err(e) = std::fs::rename(&tmp, &link) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&link)(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_platforms_to_restic_names() {
        for (os, arch, want) in [
            ("linux", "x86_64", Some(("linux", "amd64"))),
            ("linux", "aarch64", Some(("linux", "arm64"))),
            ("linux", "x86", Some(("linux", "386"))),
            ("macos", "aarch64", Some(("darwin", "arm64"))),
            ("freebsd", "x86_64", Some(("freebsd", "amd64"))),
            ("windows", "x86_64", None),
            ("linux", "sparc", None),
        ] {
            assert_eq!(platform_of(os, arch).ok(), want, "{os}/{arch}");
        }
    }

    #[test]
    fn builds_urls() {
        let m = Mirror {
            api_base: "https://api.github.com".into(),
            download_base: "https://github.com/restic/restic/releases/download".into(),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(
            m.latest_url(),
            "https://api.github.com/repos/restic/restic/releases/latest"
        );
        assert_eq!(
            m.asset_url("0.17.3", &asset_name("0.17.3", "linux", "amd64")),
            "https://github.com/restic/restic/releases/download/v0.17.3/restic_0.17.3_linux_amd64.bz2"
        );
        assert_eq!(
            m.sums_url("0.17.3"),
            "https://github.com/restic/restic/releases/download/v0.17.3/SHA256SUMS"
        );
    }

    #[test]
    fn environment_wins_over_config_and_defaults() {
        let none = |_: &str| None;
        let m = Mirror::resolve_with(None, none).unwrap();
        assert_eq!(m.api_base, DEFAULT_RELEASE_API);
        assert_eq!(m.download_base, DEFAULT_DOWNLOAD_BASE);
        assert_eq!(m.timeout, Duration::from_secs(DEFAULT_HTTP_TIMEOUT_SECONDS));
        let env = |k: &str| match k {
            ENV_RELEASE_API => Some("http://127.0.0.1:8080/".to_string()),
            ENV_HTTP_TIMEOUT => Some("2".to_string()),
            _ => None,
        };
        let m = Mirror::resolve_with(None, env).unwrap();
        assert_eq!(m.api_base, "http://127.0.0.1:8080");
        assert_eq!(m.timeout, Duration::from_secs(2));
        let bad = |k: &str| (k == ENV_DOWNLOAD_BASE).then(|| "ftp://x".to_string());
        assert_eq!(
            Mirror::resolve_with(None, bad).err().map(|e| e.to_string()),
            Some(
                "`RESTIC_MANAGER_DOWNLOAD_BASE` must be an http:// or https:// URL, not `ftp://x`"
                    .to_string()
            )
        );
        let zero = |k: &str| (k == ENV_HTTP_TIMEOUT).then(|| "0".to_string());
        assert!(Mirror::resolve_with(None, zero).is_err());
    }

    #[test]
    fn checks_versions() {
        for (text, want) in [
            ("0.17.3", Ok("0.17.3")),
            ("v0.14.0", Ok("0.14.0")),
            (
                "0.13.1",
                Err("restic 0.13.1 is too old; restic-manager needs 0.14.0 or newer"),
            ),
            ("0.17", Err("`0.17` is not a restic version like `0.17.3`")),
            (
                "../../x",
                Err("`../../x` is not a restic version like `0.17.3`"),
            ),
            (
                "0.17.3-rc1",
                Err("`0.17.3-rc1` is not a restic version like `0.17.3`"),
            ),
        ] {
            let got = parse_version(text).map_err(|e| e.to_string());
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{text}");
        }
    }

    #[test]
    fn finds_checksums_in_sha256sums() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let sums = format!(
            "{a}  restic_0.17.3_linux_amd64.bz2\n{b} *restic_0.17.3_darwin_arm64.bz2\nxyz  restic_0.17.3_linux_arm.bz2\n"
        );
        assert_eq!(
            find_checksum(&sums, "restic_0.17.3_linux_amd64.bz2"),
            Some(a)
        );
        assert_eq!(
            find_checksum(&sums, "restic_0.17.3_darwin_arm64.bz2"),
            Some("b".repeat(64))
        );
        assert_eq!(find_checksum(&sums, "restic_0.17.3_linux_arm.bz2"), None);
        assert_eq!(find_checksum(&sums, "restic_0.17.3_linux_386.bz2"), None);
    }

    #[test]
    fn lists_and_switches_versions() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(current(d), None);
        for v in ["0.9.0", "0.14.0", "0.17.3"] {
            std::fs::write(d.join(format!("restic-{v}")), "x").unwrap();
        }
        switch_link(d, "0.14.0").unwrap();
        assert_eq!(current(d).as_deref(), Some("0.14.0"));
        switch_link(d, "0.17.3").unwrap();
        assert_eq!(current(d).as_deref(), Some("0.17.3"));
        assert_eq!(installed(d), ["0.9.0", "0.14.0", "0.17.3"]);
    }
}

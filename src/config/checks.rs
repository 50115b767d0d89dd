//! Checks that keep a configuration from being accepted today and breaking
//! later: numbers bounded before they meet a clock, no control characters in
//! values that end up in crontab lines, systemd units or restic arguments,
//! and the values that parse but mislead (a `url` that wins over `path`, a
//! reserved tag, an empty password file, a cron expression that never
//! fires).
//!
//! They run over the parsed TOML tree before resolution, so every value is
//! seen with its exact location, whatever table (service, profile, hook,
//! dump, notifier) it sits in. Messages never repeat a long value whole
//! ([`tidy`]).

use std::path::Path;
use std::time::{Duration, Instant};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::load::Locator;
use super::{Diagnostic, ValueError};

/// The longest any configured duration in seconds may be: 30 days.
pub const MAX_SECONDS: u64 = 30 * 86_400;
/// The longest any configured duration in minutes may be: 30 days.
pub const MAX_MINUTES: u64 = 30 * 1440;
/// How far a clock is ever moved by a configured value (100 years): a
/// ceiling for the checked arithmetic in [`after`].
const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);

/// The bounded integer keys: key, smallest, largest, what the largest
/// means, and the largest value of the key's type (serde reports values
/// beyond that itself). A smallest of 0 means the lower bound is checked
/// where the key is resolved (with its own message).
const BOUNDS: &[(&str, u64, u64, &str, u64)] = &[
    ("timeout_seconds", 0, MAX_SECONDS, " (30 days)", u64::MAX),
    (
        "default_timeout_seconds",
        0,
        MAX_SECONDS,
        " (30 days)",
        u64::MAX,
    ),
    (
        "hook_timeout_seconds",
        0,
        MAX_SECONDS,
        " (30 days)",
        u64::MAX,
    ),
    ("lock_wait_seconds", 0, MAX_SECONDS, " (30 days)", u64::MAX),
    (
        "long_running_threshold_minutes",
        0,
        MAX_MINUTES,
        " (30 days)",
        u64::MAX,
    ),
    ("rate_limit_minutes", 0, MAX_MINUTES, " (30 days)", u64::MAX),
    ("log_max_files", 1, 10_000, "", u32::MAX as u64),
    ("log_max_size_mb", 1, 102_400, " (100 GiB)", u64::MAX),
    ("max_parallel_services", 0, 256, "", u32::MAX as u64),
    ("max_parallel_destinations", 0, 256, "", u32::MAX as u64),
    ("drill_sample_files", 0, 100_000, "", u32::MAX as u64),
    ("port", 1, 65_535, "", u16::MAX as u64),
];

/// Keys whose values are shell commands: they may span several lines (a
/// multi-line script in `"""`), so only NUL is refused in them.
const SHELL_KEYS: &[&str] = &[
    "command",
    "verify_command",
    "restore_command",
    "password_command",
    "restic_password_command",
    "repository_password_command",
];

/// Keys naming a file, folder or program: an empty value would silently
/// mean "the current folder" or fail only when used.
fn is_path_key(key: &str) -> bool {
    key.ends_with("_file")
        || key.ends_with("_directory")
        || key.ends_with("_binary")
        || matches!(key, "docker_base" | "working_dir")
}

/// Password commands: an empty one runs nothing and gives an empty password.
const PASSWORD_COMMAND_KEYS: &[&str] = &[
    "password_command",
    "restic_password_command",
    "repository_password_command",
];

/// How much of a value a message repeats, in characters.
const QUOTE_MAX: usize = 120;
/// The longest message kept whole, in characters.
const MESSAGE_MAX: usize = 16_384;

/// `start + d`, never overflowing: a duration beyond 100 years counts as
/// 100 years. Configured values are bounded far below that; this keeps a
/// clock from panicking whatever reaches it.
pub fn after(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d.min(FAR))
        .or_else(|| start.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(start)
}

/// The file's text, or where its first byte that is not UTF-8 is.
pub fn decode(file: &Path, bytes: Vec<u8>) -> Result<String, Diagnostic> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        // The prefix is valid UTF-8 by definition.
        let good = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
        let line = good.matches('\n').count() + 1;
        let column = good.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: format!(
                "the file is not valid UTF-8: byte 0x{:02X} at offset {at} cannot be read as text; save the file as UTF-8",
                bytes.get(at).copied().unwrap_or_default()
            ),
        }
    })
}

/// Every check over the parsed file.
pub fn scan(file: &Path, loc: &Locator, root: &DeTable<'_>, errors: &mut Vec<Diagnostic>) {
    let mut s = Scan {
        file,
        loc,
        errors: Vec::new(),
    };
    if root.is_empty() {
        s.push(
            0,
            "the configuration file is empty: there is nothing to back up; add a destination and a service (`[destinations.NAME]`, `[services.NAME]`), starting from `config.example.toml`".to_string(),
        );
    }
    s.table("", root);
    if let Some(d) = root
        .get("destinations")
        .and_then(|d| d.get_ref().as_table())
    {
        for (name, dest) in d {
            if let Some(t) = dest.get_ref().as_table() {
                s.destination(name.get_ref(), t);
            }
        }
    }
    errors.append(&mut s.errors);
}

struct Scan<'a> {
    file: &'a Path,
    loc: &'a Locator,
    errors: Vec<Diagnostic>,
}

impl Scan<'_> {
    fn push(&mut self, offset: usize, message: String) {
        let (line, column) = self.loc.line_col(offset);
        self.errors.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message,
        });
    }

    /// Checks every key and value of a table written as `[name]`.
    fn table(&mut self, name: &str, t: &DeTable<'_>) {
        for (k, v) in t {
            let key = k.get_ref().as_ref();
            if let Some(c) = key.chars().find(|c| c.is_control()) {
                self.push(
                    k.span().start,
                    format!(
                        "a key in `[{name}]` contains {}; key and table names may not contain control characters",
                        describe(c)
                    ),
                );
            }
            let path = if name.is_empty() {
                key.to_string()
            } else {
                format!("{name}.{key}")
            };
            self.value(name, key, &path, v);
        }
    }

    fn value(&mut self, table: &str, key: &str, path: &str, v: &Spanned<DeValue<'_>>) {
        let at = v.span().start;
        match v.get_ref() {
            DeValue::Table(t) => self.table(path, t),
            DeValue::Array(items) => {
                for item in items.iter() {
                    self.value(table, key, path, item);
                }
            }
            DeValue::String(s) => self.string(table, key, at, s),
            DeValue::Integer(i) => {
                if let Ok(n) = i128::from_str_radix(i.as_str(), i.radix()) {
                    self.integer(table, key, at, n);
                }
            }
            _ => {}
        }
    }

    fn integer(&mut self, table: &str, key: &str, at: usize, n: i128) {
        // Keys not listed (added later, e.g. other `*_timeout_seconds`) get
        // the general duration ceiling; their lower bound is their own.
        let general = if key.ends_with("_seconds") {
            Some((key, 0, MAX_SECONDS, " (30 days)", u64::MAX))
        } else if key.ends_with("_minutes") {
            Some((key, 0, MAX_MINUTES, " (30 days)", u64::MAX))
        } else {
            None
        };
        let Some((_, min, max, meaning, type_max)) =
            BOUNDS.iter().find(|b| b.0 == key).copied().or(general)
        else {
            return;
        };
        // Negative values and values beyond the type are serde's to report.
        if n < 0 || n > i128::from(type_max) {
            return;
        }
        if n > i128::from(max) || n < i128::from(min) {
            let range = if min > 0 {
                format!("from {min} to {max}{meaning}")
            } else {
                format!("at most {max}{meaning}")
            };
            self.push(
                at,
                format!("`{key}` in `[{table}]` must be {range}, not {n}"),
            );
        }
    }

    fn string(&mut self, table: &str, key: &str, at: usize, s: &str) {
        let in_env = table.ends_with(".env") || table == "env";
        let shell = SHELL_KEYS.contains(&key) || in_env;
        let bad = if shell {
            s.chars().find(|c| *c == '\0')
        } else {
            s.chars().find(|c| c.is_control())
        };
        if let Some(c) = bad {
            let why = if c == '\0' {
                "no program can receive a NUL character".to_string()
            } else {
                "values outside commands end up in crontab lines, systemd units and restic's arguments, where a line break or control character would split or corrupt them".to_string()
            };
            let place = s.chars().take_while(|x| *x != c).count() + 1;
            self.push(
                at,
                format!(
                    "`{key}` in `[{table}]` contains {} at character {place}; remove it ({why})",
                    describe(c)
                ),
            );
            return;
        }
        if s.trim().is_empty() && (is_path_key(key) || PASSWORD_COMMAND_KEYS.contains(&key)) {
            let what = if PASSWORD_COMMAND_KEYS.contains(&key) {
                "a command that prints the password"
            } else {
                "a path"
            };
            self.push(
                at,
                format!("`{key}` in `[{table}]` is empty; give {what}, or remove the key"),
            );
        }
        if key == "tags"
            && let Some(other) = s.strip_prefix("service:")
        {
            self.push(
                at,
                format!(
                    "tag `{s}` in `[{table}]` is reserved: restic-manager marks the snapshots of service `{other}` with it, so snapshots would be counted as that service's; choose a tag that does not start with `service:`"
                ),
            );
        }
    }

    /// `[destinations.NAME]` values that parse but would be used wrongly.
    fn destination(&mut self, name: &str, t: &DeTable<'_>) {
        let get = |k: &str| t.get(k);
        let kind = get("type").and_then(|v| v.get_ref().as_str());
        if let (Some(_), Some(url)) = (get("path"), get("url")) {
            self.push(
                url.span().start,
                format!(
                    "destination `{name}` sets both `path` and `url`; restic would use `url` and ignore `path`: keep only one"
                ),
            );
        }
        if let Some(b) = get("bucket")
            && let Some(bucket) = b.get_ref().as_str()
        {
            let n = bucket.chars().count();
            let (lo, hi, who) = match kind {
                Some("b2") => (6, 50, "B2"),
                _ => (3, 63, "S3"),
            };
            if matches!(kind, Some("s3" | "b2"))
                && !bucket.chars().any(char::is_control)
                && (n < lo || n > hi || bucket.contains('/') || bucket.contains(' '))
            {
                self.push(
                    b.span().start,
                    format!(
                        "destination `{name}`: bucket `{bucket}` is not a valid {who} bucket name ({who} bucket names are {lo} to {hi} characters, without `/` or spaces; put a folder inside the bucket in `prefix`)"
                    ),
                );
            }
        }
        if let Some(u) = get("url")
            && let Some(url) = u.get_ref().as_str()
            && !url.chars().any(char::is_control)
            && let Err(e) = check_url(kind.unwrap_or(""), url)
        {
            self.push(u.span().start, format!("destination `{name}`: {e}"));
        }
    }
}

/// A URL scheme as RFC 3986 writes it: a letter, then letters, digits,
/// `+`, `-` or `.`.
fn valid_scheme(s: &str) -> bool {
    let mut c = s.chars();
    c.next().is_some_and(|f| f.is_ascii_alphabetic())
        && c.all(|x| x.is_ascii_alphanumeric() || "+-.".contains(x))
}

/// The parts of a repository `url` that would make restic misread it.
fn check_url(kind: &str, url: &str) -> Result<(), ValueError> {
    let Some(i) = url.find("://") else {
        if kind == "rest" {
            return Err(ValueError::RestUrl(url.to_string()));
        }
        return Ok(());
    };
    let schemes = &url[..i];
    // `rest:http`, `s3:https`: restic's backend prefix, then the scheme.
    for part in schemes.split(':') {
        if !valid_scheme(part) {
            return Err(ValueError::UrlScheme {
                url: url.to_string(),
                scheme: part.to_string(),
            });
        }
    }
    let inner = schemes.rsplit(':').next().unwrap_or(schemes);
    let http = matches!(inner, "http" | "https");
    if matches!(kind, "rest" | "s3") && !http {
        return Err(ValueError::UrlNotHttp {
            url: url.to_string(),
            scheme: inner.to_string(),
            kind: kind.to_string(),
        });
    }
    Ok(())
}

/// "a newline (U+000A)" and the like.
fn describe(c: char) -> String {
    let name = match c {
        '\n' => "a newline",
        '\r' => "a carriage return",
        '\t' => "a tab",
        '\0' => "a NUL character",
        '\x1b' => "an escape character",
        _ => "a control character",
    };
    format!("{name} (U+{:04X})", u32::from(c))
}

/// Why a cron expression that croner accepts never fires: no day of a
/// 28-year calendar cycle (every weekday on every date, leap years
/// included) matches its day-of-month, month and day-of-week fields.
/// Expressions with extensions (`L`, `W`, `#`) are not judged.
pub fn never_fires(expr: &str) -> Option<ValueError> {
    use chrono::{Datelike, NaiveDate};
    let e = super::cron_expr::CronExpr::parse(expr).ok()?;
    let or = e.days_or();
    let mut day = NaiveDate::from_ymd_opt(2000, 1, 1)?;
    let end = NaiveDate::from_ymd_opt(2028, 1, 1)?;
    while day < end {
        let dom = e.dom.all || e.dom.values.contains(&day.day());
        let dow = e.dow.all || e.dow.values.contains(&day.weekday().num_days_from_sunday());
        let days = if or { dom || dow } else { dom && dow };
        if days && e.month.values.contains(&day.month()) {
            return None;
        }
        day = day.succ_opt()?;
    }
    Some(ValueError::CronNeverFires(expr.to_string()))
}

/// Shortens every message for printing: a quoted value longer than
/// [`QUOTE_MAX`] characters keeps its start and end, control characters in
/// quoted values are shown escaped, and a message is cut at
/// [`MESSAGE_MAX`] characters. A 10 MB value comes back as a few hundred
/// bytes.
pub fn tidy(mut errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    for d in &mut errors {
        d.message = tidy_message(&d.message);
    }
    errors
}

fn tidy_message(m: &str) -> String {
    let parts: Vec<&str> = m.split('`').collect();
    let quoted_last = parts.len() % 2 == 1;
    let mut out = String::with_capacity(m.len().min(MESSAGE_MAX));
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('`');
        }
        // Odd segments sit between two backticks.
        if i % 2 == 1 && (quoted_last || i + 1 < parts.len()) {
            out.push_str(&shorten(p));
        } else {
            out.push_str(p);
        }
    }
    if out.chars().count() > MESSAGE_MAX {
        let cut: String = out.chars().take(MESSAGE_MAX).collect();
        return format!("{cut} … (message cut at {MESSAGE_MAX} characters)");
    }
    out
}

fn shorten(value: &str) -> String {
    let escaped: String = value
        .chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    let n = escaped.chars().count();
    if n <= QUOTE_MAX {
        return escaped;
    }
    let head: String = escaped.chars().take(80).collect();
    let tail: String = escaped.chars().skip(n - 20).collect();
    format!("{head}…[{} characters]…{tail}", n - 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crons_that_never_fire() {
        for (expr, never) in [
            ("0 0 31 2 *", true),
            ("0 0 30 2 *", true),
            ("0 0 31 4,6,9,11 *", true),
            ("0 0 29 2 *", false),
            ("0 0 31 2 1", false),
            ("0 0 31 * *", false),
            ("30 2 * * *", false),
        ] {
            assert_eq!(never_fires(expr).is_some(), never, "{expr}");
        }
    }

    #[test]
    fn urls() {
        for (kind, url, ok) in [
            ("sftp", "sftp://u@h:22//srv", true),
            ("sftp", "3ftp://u@h//srv", false),
            ("rest", "rest:https://h:8000/", true),
            ("rest", "https://h:8000/", true),
            ("rest", "rest:ftp://h/", false),
            ("rest", "h:8000", false),
            ("s3", "s3:https://minio:9000/bucket", true),
            ("s3", "s3:s3.amazonaws.com/bucket", true),
            ("s3", "s3:ftp://x/b", false),
            ("local", "/srv/backup", true),
        ] {
            assert_eq!(check_url(kind, url).is_ok(), ok, "{kind} {url}");
        }
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "x".repeat(10_000_000);
        let m = tidy_message(&format!("`schedule` value `{long}` is bad"));
        assert!(m.len() < 300, "{}", m.len());
        assert!(m.starts_with("`schedule` value `xxx"));
        assert!(m.ends_with("xxx` is bad"));
        assert_eq!(tidy_message("a `b\nc` d"), "a `b\\nc` d");
    }

    #[test]
    fn bad_utf8_is_located() {
        let d = decode(
            Path::new("c.toml"),
            b"[global]\nhost = \"a\xffb\"\n".to_vec(),
        )
        .map_or_else(|d| d, |_| panic!("decoded"));
        assert_eq!((d.line, d.column), (2, 10));
    }

    #[test]
    fn clocks_never_overflow() {
        let now = Instant::now();
        assert!(after(now, Duration::from_secs(u64::MAX)) > now);
        assert_eq!(
            after(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
    }
}

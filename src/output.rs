//! Human output vs `--json`, colour only on a terminal, and progress bars.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::engine::Progress;
use crate::logging::TERMINAL;
use crate::model::Outcome;
use crate::restic::output::BackupStatus;

/// Writes a line to stdout. A closed pipe (`… | head`) is not an error
/// worth a panic: the reader has seen what it wanted.
fn out(s: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{s}");
}

/// How a coloured word reads on a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Green: `ok`.
    Good,
    /// Yellow: warnings, interruptions, stale or unverified repositories.
    Caution,
    /// Red: failures.
    Bad,
}

/// How a command prints.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub color: bool,
}

impl Printer {
    pub fn new(json: bool, quiet: bool, verbose: u8) -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self {
            json,
            quiet,
            verbose,
            color,
        }
    }

    /// Prints a value as pretty JSON on stdout.
    pub fn json<T: Serialize>(&self, v: &T) {
        match serde_json::to_string_pretty(v) {
            Ok(s) => out(&s),
            Err(e) => self.error(format!("cannot encode JSON output: {e}")),
        }
    }

    /// A line for stdout (skipped in JSON mode).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.json {
            out(s.as_ref());
        }
    }

    /// A command's report on stdout, skipped with `-q` (only warnings and
    /// errors, so that cron mails nothing when all went well) and in JSON
    /// mode.
    pub fn report(&self, s: impl AsRef<str>) {
        if !self.json && !self.quiet {
            out(s.as_ref());
        }
    }

    /// Informational line on stderr (skipped with `-q`), through the
    /// terminal layer of [`crate::logging`].
    pub fn info(&self, s: impl AsRef<str>) {
        if !self.quiet {
            tracing::info!(target: TERMINAL, "{}", s.as_ref());
        }
    }

    /// Extra detail on stderr with `-v` (a debug event of the terminal
    /// layer).
    pub fn verbose(&self, s: impl AsRef<str>) {
        if self.verbose > 0 && !self.quiet {
            tracing::debug!(target: TERMINAL, "{}", s.as_ref());
        }
    }

    /// A warning on stderr (`warning: …`), shown with `-q` and `--json`
    /// too: [`crate::logging::warn`].
    pub fn warn(&self, s: impl AsRef<str>) {
        crate::logging::warn(s);
    }

    /// An error on stderr (`error: …`), shown with `-q` and `--json` too:
    /// [`crate::logging::error`].
    pub fn error(&self, s: impl AsRef<str>) {
        crate::logging::error(s);
    }

    /// An outcome word, coloured on a terminal.
    pub fn outcome(&self, o: Outcome) -> String {
        let tone = match o {
            Outcome::Ok => Tone::Good,
            Outcome::Warning | Outcome::Interrupted => Tone::Caution,
            Outcome::Failed => Tone::Bad,
        };
        self.tone(o.as_str(), tone)
    }

    /// A word coloured green, yellow or red on a terminal.
    pub fn tone(&self, text: &str, tone: Tone) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match tone {
            Tone::Good => "32",
            Tone::Caution => "33",
            Tone::Bad => "31",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// Formats rows as aligned columns with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let visible = |s: &str| {
        let mut n = 0;
        let mut esc = false;
        for c in s.chars() {
            if c == '\x1b' {
                esc = true;
            } else if esc {
                if c == 'm' {
                    esc = false;
                }
            } else {
                n += 1;
            }
        }
        n
    };
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(visible(c));
            }
        }
    }
    let fmt_row = |cells: Vec<&str>| {
        let mut line = String::new();
        for (i, c) in cells.iter().enumerate() {
            line.push_str(c);
            if i + 1 < cells.len() {
                line.push_str(&" ".repeat(widths[i] - visible(c) + 2));
            }
        }
        line.trim_end().to_string()
    };
    let mut out = vec![fmt_row(header.to_vec())];
    for r in rows {
        out.push(fmt_row(r.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `1h 2m`, `3.2s`.
pub fn duration_ms(ms: u64) -> String {
    if ms < 60_000 {
        #[allow(clippy::cast_precision_loss)]
        return format!("{:.1}s", ms as f64 / 1000.0);
    }
    age(ms / 1000)
}

/// `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d {}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Local time of a unix-millisecond timestamp.
pub fn local_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || "?".to_string(),
        |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        },
    )
}

/// Progress on a terminal: a bar per running backup, notes above them.
pub struct TermProgress {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl TermProgress {
    /// A terminal progress display, or `None` when stderr is not a terminal
    /// (cron, pipes) or the user asked for quiet or JSON output.
    pub fn for_terminal(p: &Printer) -> Option<TermProgress> {
        if p.quiet || p.json || !std::io::stderr().is_terminal() {
            return None;
        }
        Some(TermProgress {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        })
    }
}

fn key(s: &str, d: &str) -> String {
    format!("{s} → {d}")
}

impl Progress for TermProgress {
    fn wanted(&self) -> bool {
        true
    }

    fn started(&self, service: &str, destination: &str) {
        let bar = self.multi.add(ProgressBar::new(0));
        let style = ProgressStyle::with_template(
            "{spinner} {msg:24} [{bar:30}] {bytes}/{total_bytes} {percent}% eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(key(service, destination));
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        if let Ok(mut b) = self.bars.lock() {
            b.insert(key(service, destination), bar);
        }
    }

    fn update(&self, service: &str, destination: &str, st: &BackupStatus) {
        if let Ok(b) = self.bars.lock()
            && let Some(bar) = b.get(&key(service, destination))
        {
            bar.set_length(st.total_bytes.max(st.bytes_done));
            bar.set_position(st.bytes_done);
        }
    }

    fn finished(&self, service: &str, destination: &str, outcome: Outcome) {
        if let Ok(mut b) = self.bars.lock()
            && let Some(bar) = b.remove(&key(service, destination))
        {
            bar.finish_and_clear();
            let _ = self.multi.println(format!(
                "{} {}",
                key(service, destination),
                outcome.as_str()
            ));
        }
    }

    fn note(&self, text: &str) {
        let _ = self.multi.println(text);
    }
}

/// A byte-counting bar for a download, on a terminal only (not with `-q`
/// or `--json`, nor under cron).
pub fn download_bar(p: &Printer, what: &str) -> Option<ProgressBar> {
    if p.quiet || p.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let style =
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    Some(bar)
}

/// No bars; notes to stderr only with `-v`.
pub struct PlainProgress(pub Printer);

impl Progress for PlainProgress {
    fn wanted(&self) -> bool {
        false
    }
    fn started(&self, service: &str, destination: &str) {
        self.0
            .verbose(format!("{service}: backing up to `{destination}`"));
    }
    fn update(&self, _: &str, _: &str, _: &BackupStatus) {}
    fn finished(&self, service: &str, destination: &str, outcome: Outcome) {
        self.0
            .verbose(format!("{service}: `{destination}` {}", outcome.as_str()));
    }
    fn note(&self, text: &str) {
        self.0.verbose(text);
    }
}

/// Serializes `v` with the keys of every object in it sorted, as `json!`
/// maps hold them: for a `--json` document that was built with `json!`
/// and embeds a type whose fields are declared in another order
/// (`#[serde(serialize_with = "output::sorted_keys")]`).
pub fn sorted_keys<T: Serialize, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(v)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// `T` written through [`sorted_keys`]: a document whose keys come from
/// more than one type (`#[serde(flatten)]`), which no declaration order
/// can sort.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent, bound = "T: Serialize")]
pub struct SortedKeys<T>(#[serde(serialize_with = "sorted_keys")] pub T);

/// Panics unless every object in `v`'s JSON lists its keys sorted: the
/// `--json` documents that were `json!` maps keep their byte order.
#[cfg(test)]
pub fn assert_sorted_keys<T: Serialize>(v: &T) {
    let direct = serde_json::to_string(v).unwrap();
    let sorted = serde_json::to_value(v)
        .and_then(|v| serde_json::to_string(&v))
        .unwrap();
    assert_eq!(direct, sorted, "keys out of order");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(age(59), "59s");
        assert_eq!(age(3 * 3600 + 5 * 60), "3h 5m");
        assert_eq!(age(2 * 86_400 + 4 * 3600), "2d 4h");
        assert_eq!(duration_ms(1500), "1.5s");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y");
    }
}

//! The one logging facility: a `tracing` subscriber that `main` sets up
//! once, with two layers. The terminal layer writes to stderr at the level
//! of `-v`/`-q`, or of `RUST_LOG` when that is set; the run-log layer writes
//! the events of a service run into that run's log file at the configured
//! `log_level` ([`crate::runlog`]).
//!
//! Lines are written as their message alone (no timestamp on stderr; the
//! run log adds its own timestamp; warnings and errors start with
//! `warning: ` and `error: `), so what the command printed before it went
//! through `tracing` reads byte for byte the same.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::FilterExt as _;
use tracing_subscriber::layer::{self, Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, filter};

use crate::runlog;

/// The target of what a command prints on stderr for its user
/// ([`crate::output::Printer::info`], `verbose`, `warn` and `error`):
/// shown on the terminal, never written into a run log.
pub const TERMINAL: &str = "restic_manager::terminal";

/// The target of a run's record ([`runlog::RunLog::line`]): always written
/// into its run log, shown on the terminal only when `RUST_LOG` names it
/// (`RUST_LOG=restic_manager::record=info` streams every run's record to
/// stderr as it is written).
pub const RECORD: &str = "restic_manager::record";

/// The target of a line a command prints on stderr in every mode, as it
/// stands (the dashboard's address, a restore's preview, the path of a
/// failed run's log): [`notice`].
pub const NOTICE: &str = "restic_manager::notice";

/// A line for the user on stderr, as it stands, in every mode (`-q`,
/// `--json`, whatever `RUST_LOG` says), never in a run log.
pub fn notice(text: impl AsRef<str>) {
    tracing::info!(target: NOTICE, "{}", text.as_ref());
}

/// A warning for the user on stderr: `warning: ` and `text`, in every mode
/// (`-q`, `--json`, whatever `RUST_LOG` says), never in a run log. For code
/// with no [`crate::output::Printer`] at hand; `Printer::warn` is the same.
pub fn warn(text: impl AsRef<str>) {
    tracing::warn!(target: TERMINAL, "{}", text.as_ref());
}

/// An error for the user on stderr: `error: ` and `text`, as [`warn`].
pub fn error(text: impl AsRef<str>) {
    tracing::error!(target: TERMINAL, "{}", text.as_ref());
}

/// Our own events: other crates' (HTTP, Docker) appear only when
/// `RUST_LOG` asks for them.
const CRATE: &str = "restic_manager";

/// Sets up the subscriber for the whole process. `RUST_LOG`, when set,
/// decides what stderr shows; otherwise `-q` shows warnings and errors, the
/// default information, `-v` debug detail (each restic call) and `-vv`
/// traces. A run's record stays off stderr unless `RUST_LOG` names
/// [`RECORD`].
pub fn init(verbose: u8, quiet: bool) {
    let terminal = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => rust_log_filter(&spec).unwrap_or_else(|e| {
            let _ = writeln!(
                std::io::stderr().lock(),
                "warning: ignoring RUST_LOG `{spec}`: {e}"
            );
            EnvFilter::new(default_directive(verbose, quiet))
        }),
        _ => EnvFilter::new(default_directive(verbose, quiet)),
    };
    let _ = subscriber(terminal).try_init();
}

/// The terminal's filter from `RUST_LOG`: what it says, and the run's
/// record off unless it names it (`RUST_LOG=debug` showed no record lines
/// before they went through `tracing`, and should not start to).
fn rust_log_filter(spec: &str) -> Result<EnvFilter, filter::ParseError> {
    if spec.contains(RECORD) {
        EnvFilter::try_new(spec)
    } else {
        EnvFilter::try_new(format!("{spec},{RECORD}=off"))
    }
}

/// The two layers over one registry; `terminal` filters stderr.
fn subscriber(terminal: EnvFilter) -> impl Subscriber + Send + Sync {
    // Every level of our own events reaches the run-log layer: each run
    // log decides by its own `log_level`, which is known only per run.
    let ours = filter::filter_fn(|m| {
        m.target().starts_with(CRATE) && m.target() != TERMINAL && m.target() != NOTICE
    });
    tracing_subscriber::registry()
        .with(TerminalLayer.with_filter(terminal_filter(terminal)))
        .with(RunLogLayer.with_filter(ours))
}

/// What stderr shows: what `terminal` lets through, and what a command
/// prints as a warning or an error, which reached stderr whatever
/// `RUST_LOG` said when it was an `eprintln!`, and still does.
fn terminal_filter<S>(terminal: EnvFilter) -> impl layer::Filter<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let for_the_user = filter::filter_fn(|m| {
        (m.target() == TERMINAL && *m.level() <= Level::WARN) || m.target() == NOTICE
    });
    terminal.or(for_the_user)
}

/// The stderr level when `RUST_LOG` is not set; never the run's record.
fn default_directive(verbose: u8, quiet: bool) -> String {
    let level = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    format!("{CRATE}={level},{RECORD}=off")
}

/// Writes each event's message (and any other fields as ` key=value`) as
/// one line on stderr, warnings and errors with their prefix.
struct TerminalLayer;

impl<S: Subscriber> Layer<S> for TerminalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        // A closed stderr is no reason to panic (`eprintln!` would).
        let _ = writeln!(std::io::stderr().lock(), "{}", terminal_line(event));
    }
}

/// An event as stderr shows it.
fn terminal_line(event: &Event<'_>) -> String {
    let text = Text::of(event).0;
    match *event.metadata().level() {
        Level::ERROR => format!("error: {text}"),
        Level::WARN => format!("warning: {text}"),
        _ => text,
    }
}

/// Writes the events inside a run's span into that run's log file.
struct RunLogLayer;

/// The run log a span stands for (its [`runlog::SPAN_FIELD`]).
struct RunLogKey(u64);

impl<S> Layer<S> for RunLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut key = KeyVisitor(None);
        attrs.record(&mut key);
        if let (Some(k), Some(span)) = (key.0, ctx.span(id)) {
            span.extensions_mut().insert(RunLogKey(k));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        let Some(key) = scope
            .into_iter()
            .find_map(|span| span.extensions().get::<RunLogKey>().map(|k| k.0))
        else {
            return;
        };
        let level = *event.metadata().level();
        let text = Text::of(event).0;
        let line = match level {
            Level::ERROR => format!("error: {text}"),
            Level::WARN => format!("warning: {text}"),
            Level::INFO => text,
            Level::DEBUG => format!("debug: {text}"),
            Level::TRACE => format!("trace: {text}"),
        };
        runlog::write_event(key, level, &line);
    }
}

struct KeyVisitor(Option<u64>);

impl Visit for KeyVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == runlog::SPAN_FIELD {
            self.0 = Some(value);
        }
    }

    fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
}

/// An event as one line: its message, then its other fields.
struct Text(String);

impl Text {
    fn of(event: &Event<'_>) -> Text {
        let mut t = Text(String::new());
        event.record(&mut t);
        t
    }
}

impl Visit for Text {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            // The message comes first, whatever order the fields have.
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn stderr_levels_follow_v_and_q() {
        let off = ",restic_manager::record=off";
        assert_eq!(
            default_directive(0, true),
            format!("restic_manager=warn{off}")
        );
        assert_eq!(
            default_directive(0, false),
            format!("restic_manager=info{off}")
        );
        assert_eq!(
            default_directive(1, false),
            format!("restic_manager=debug{off}")
        );
        assert_eq!(
            default_directive(3, false),
            format!("restic_manager=trace{off}")
        );
    }

    /// Collects what the terminal layer would write.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if let Ok(mut seen) = self.0.lock() {
                seen.push(terminal_line(event));
            }
        }
    }

    /// What stderr shows of a run's record line, a command's info, verbose
    /// detail, warning and error, and a restic call's debug event, under
    /// `RUST_LOG` or else `-v`/`-q`.
    fn stderr_with(rust_log: Option<&str>, verbose: u8, quiet: bool) -> Vec<String> {
        let terminal = match rust_log {
            Some(spec) => rust_log_filter(spec).unwrap_or_else(|e| panic!("{spec}: {e}")),
            None => EnvFilter::new(default_directive(verbose, quiet)),
        };
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry()
            .with(Capture(Arc::clone(&seen)).with_filter(terminal_filter(terminal)));
        tracing::subscriber::with_default(sub, || {
            let log = runlog::RunLog::none();
            log.line("record");
            tracing::info!(target: TERMINAL, "note");
            tracing::debug!(target: TERMINAL, "detail");
            warn("careful");
            error("broken");
            notice("address");
            tracing::debug!("restic call");
        });
        seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    #[test]
    fn the_run_record_stays_off_stderr_unless_rust_log_names_it() {
        let user = ["warning: careful", "error: broken", "address"];
        assert_eq!(
            stderr_with(None, 0, false),
            ["note", user[0], user[1], user[2]]
        );
        assert_eq!(
            stderr_with(None, 1, false),
            ["note", "detail", user[0], user[1], user[2], "restic call"]
        );
        assert_eq!(
            stderr_with(None, 2, false),
            ["note", "detail", user[0], user[1], user[2], "restic call"]
        );
        assert_eq!(stderr_with(None, 0, true), user);
        assert_eq!(
            stderr_with(Some("debug"), 0, false),
            ["note", "detail", user[0], user[1], user[2], "restic call"]
        );
        assert_eq!(
            stderr_with(Some("restic_manager::record=info"), 0, false),
            ["record", user[0], user[1], user[2]]
        );
    }

    #[test]
    fn warnings_errors_and_notices_reach_stderr_whatever_rust_log_says() {
        let user = ["warning: careful", "error: broken", "address"];
        assert_eq!(stderr_with(Some("off"), 0, false), user);
        assert_eq!(stderr_with(Some("hyper=debug"), 0, false), user);
    }

    /// Writes one debug, one info and one terminal event inside the span of
    /// a run log at `level`, one debug event outside it; returns the log.
    fn run_log_at(level: &str) -> String {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = tracing::subscriber::with_default(subscriber(EnvFilter::new("off")), || {
            // The span is the current subscriber's: created under it.
            let (log, warning) = runlog::RunLog::create(dir.path(), "svc", 7, 10, 10, level);
            assert_eq!(warning, None);
            tracing::debug!("outside any run");
            // The record is written outside the span too (before the run's
            // work enters it), and from a thread (a hook's output reader).
            log.line("started");
            log.span().in_scope(|| {
                log.line("record");
                tracing::debug!(took_ms = 12_u64, "restic call");
                tracing::warn!("careful");
                tracing::info!(target: TERMINAL, "for the terminal only");
                notice("nor a notice");
            });
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            std::thread::scope(|s| {
                s.spawn(|| {
                    tracing::dispatcher::with_default(&dispatch, || log.line("from a thread"));
                });
            });
            log.line("outcome: ok");
            log.path().map(Path::to_path_buf)
        });
        let text = std::fs::read_to_string(path.unwrap_or_default()).unwrap_or_default();
        // Drop the timestamps.
        text.lines()
            .map(|l| l.splitn(3, ' ').nth(2).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn run_log_takes_the_events_of_its_span_at_its_level() {
        let (start, end) = ("started\n", "\nfrom a thread\noutcome: ok");
        assert_eq!(
            run_log_at("debug"),
            format!("{start}record\ndebug: restic call took_ms=12\nwarning: careful{end}")
        );
        assert_eq!(
            run_log_at("info"),
            format!("{start}record\nwarning: careful{end}")
        );
        // The run's record is kept whatever the level.
        assert_eq!(
            run_log_at("error"),
            format!("{start}record\nwarning: careful{end}")
        );
    }
}

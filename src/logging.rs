//! The one logging facility: a `tracing` subscriber that `main` sets up
//! once, with two layers. The terminal layer writes to stderr at the level
//! of `-v`/`-q`, or of `RUST_LOG` when that is set; the run-log layer writes
//! the events of a service run into that run's log file at the configured
//! `log_level` ([`crate::runlog`]).
//!
//! Lines are written as their message alone (no timestamp or level on
//! stderr; the run log adds its own timestamp), so what the command printed
//! before it went through `tracing` reads byte for byte the same.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, filter};

use crate::runlog;

/// The target of what a command prints on stderr for its user
/// ([`crate::output::Printer::info`] and `verbose`): shown on the terminal,
/// never written into a run log.
pub const TERMINAL: &str = "restic_manager::terminal";

/// Our own events: other crates' (HTTP, Docker) appear only when
/// `RUST_LOG` asks for them.
const CRATE: &str = "restic_manager";

/// Sets up the subscriber for the whole process. `RUST_LOG`, when set,
/// decides what stderr shows; otherwise `-q` shows errors, the default
/// information, `-v` debug detail (each restic call) and `-vv` traces.
pub fn init(verbose: u8, quiet: bool) {
    let terminal = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
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

/// The two layers over one registry; `terminal` filters stderr.
fn subscriber(terminal: EnvFilter) -> impl Subscriber + Send + Sync {
    // Every level of our own events reaches the run-log layer: each run
    // log decides by its own `log_level`, which is known only per run.
    let ours = filter::filter_fn(|m| m.target().starts_with(CRATE) && m.target() != TERMINAL);
    tracing_subscriber::registry()
        .with(TerminalLayer.with_filter(terminal))
        .with(RunLogLayer.with_filter(ours))
}

/// The stderr level when `RUST_LOG` is not set.
fn default_directive(verbose: u8, quiet: bool) -> String {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    format!("{CRATE}={level}")
}

/// Writes each event's message (and any other fields as ` key=value`) as
/// one line on stderr.
struct TerminalLayer;

impl<S: Subscriber> Layer<S> for TerminalLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let text = Text::of(event).0;
        // A closed stderr is no reason to panic (`eprintln!` would).
        let _ = writeln!(std::io::stderr().lock(), "{text}");
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

    use super::*;

    #[test]
    fn stderr_levels_follow_v_and_q() {
        assert_eq!(default_directive(0, true), "restic_manager=error");
        assert_eq!(default_directive(0, false), "restic_manager=info");
        assert_eq!(default_directive(1, false), "restic_manager=debug");
        assert_eq!(default_directive(3, false), "restic_manager=trace");
    }

    /// Writes one debug, one info and one terminal event inside the span of
    /// a run log at `level`, one debug event outside it; returns the log.
    fn run_log_at(level: &str) -> String {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let path = tracing::subscriber::with_default(subscriber(EnvFilter::new("off")), || {
            // The span is the current subscriber's: created under it.
            let (log, warning) = runlog::RunLog::create(dir.path(), "svc", 7, 10, 10, level);
            assert_eq!(warning, None);
            tracing::debug!("outside any run");
            log.span().in_scope(|| {
                log.line("record");
                tracing::debug!(took_ms = 12_u64, "restic call");
                tracing::warn!("careful");
                tracing::info!(target: TERMINAL, "for the terminal only");
            });
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
        assert_eq!(
            run_log_at("debug"),
            "record\ndebug: restic call took_ms=12\nwarning: careful"
        );
        assert_eq!(run_log_at("info"), "record\nwarning: careful");
        // The run's record is kept whatever the level.
        assert_eq!(run_log_at("error"), "record\nwarning: careful");
    }
}

//! `metrics`: the Prometheus text exposition on stdout; with `--push`, also
//! written to `metrics_file` and pushed to the configured receivers.

use super::Context;
use crate::cli::MetricsArgs;
use crate::error::Error;
use crate::history::History;
use crate::metrics;
use crate::model::Exit;

pub async fn run(ctx: &Context, a: &MetricsArgs) -> Result<Exit, Error> {
    let c = ctx.load_config()?;
    let history = History::open_read_only(&c.settings.state_directory)?;
    // The version is a label of `restic_manager_restic_info`; without a
    // restic the figures are still worth printing.
    let version = match ctx.restic(&c).await {
        Ok(r) => Some(r.version.to_string()),
        Err(e) => {
            ctx.printer.warn(format!("restic version unknown: {e}"));
            None
        }
    };
    let p = &ctx.printer;
    let figures = metrics::collect(&c, &history, chrono::Utc::now(), version.clone())?;
    if p.json {
        p.json(&figures);
    } else {
        print!("{}", metrics::prometheus(&figures));
    }
    if a.push {
        let warnings = metrics::publish(&c, &history, version).await;
        for w in &warnings {
            p.warn(format!("metrics: {w}"));
        }
        if !warnings.is_empty() {
            return Ok(Exit::Warning);
        }
    }
    Ok(Exit::Ok)
}

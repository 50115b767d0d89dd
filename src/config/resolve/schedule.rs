//! `schedule` and `prune`: when a service runs, and when it prunes.

use super::service::ServiceCx;
use super::{Ctx, check_cron, parse_prune};
use crate::config::Prune;

/// `schedule`: service → profile; a cron expression.
pub(super) fn schedule(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> Option<String> {
    let ServiceCx { name, .. } = *v;
    let (schedule, path) = v.pick("schedule", |r| &r.schedule);
    if let Some(expr) = schedule
        && let Err(e) = check_cron(expr)
    {
        cx.err(&path, format!("service `{name}`: {e}"));
    }
    schedule.cloned()
}

/// `prune`: service → profile → global → `always`.
pub(super) fn prune(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> Prune {
    let ServiceCx { name, g, .. } = *v;
    let (pv, path) = v.pick("prune", |r| &r.prune);
    match pv.or(g.prune.as_ref()).map(|v| parse_prune(v)) {
        None => Prune::Always,
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            if pv.is_some() {
                cx.err(&path, format!("service `{name}`: {e}"));
            }
            Prune::Always
        }
    }
}

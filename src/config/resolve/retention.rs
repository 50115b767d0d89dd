//! Retention: service → profile → global, and each destination's own.

use super::service::ServiceCx;
use super::{Ctx, valid_within, within_msg};
use crate::config::Retention;
use crate::config::schema::{DestinationRaw, GlobalRaw, ServiceRaw};

fn retention_of(
    last: Option<u32>,
    hourly: Option<u32>,
    daily: Option<u32>,
    weekly: Option<u32>,
    monthly: Option<u32>,
    yearly: Option<u32>,
    within: Option<&String>,
) -> Retention {
    Retention {
        last,
        hourly,
        daily,
        weekly,
        monthly,
        yearly,
        within: within.cloned(),
    }
}

fn global_retention(g: &GlobalRaw) -> Retention {
    retention_of(
        g.retention_last,
        g.retention_hourly,
        g.retention_daily,
        g.retention_weekly,
        g.retention_monthly,
        g.retention_yearly,
        g.retention_within.as_ref(),
    )
}

fn service_retention(s: &ServiceRaw) -> Retention {
    retention_of(
        s.retention_last,
        s.retention_hourly,
        s.retention_daily,
        s.retention_weekly,
        s.retention_monthly,
        s.retention_yearly,
        s.retention_within.as_ref(),
    )
}

pub(super) fn destination_retention(d: &DestinationRaw) -> Retention {
    retention_of(
        d.retention_last,
        d.retention_hourly,
        d.retention_daily,
        d.retention_weekly,
        d.retention_monthly,
        d.retention_yearly,
        d.retention_within.as_ref(),
    )
}

/// A service's retention: each `retention_*` key from the service, else
/// its profile, else `[global]`.
pub(super) fn of_service(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> Retention {
    let ServiceCx { s, pr, g, .. } = *v;
    let retention = service_retention(s)
        .or(&pr.map(service_retention).unwrap_or_default())
        .or(&global_retention(g));
    if let (Some(w), path) = v.pick("retention_within", |r| &r.retention_within)
        && !valid_within(w)
    {
        cx.err(&path, within_msg(w));
    }
    retention
}

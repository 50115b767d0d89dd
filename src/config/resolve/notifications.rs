//! `notify_on` and `[notifications]`: the events that notify.

use super::service::ServiceCx;
use super::{Ctx, DEFAULT_NOTIFY_ON};
use crate::config::did_you_mean;
use crate::config::load::{RawConfig, list};
use crate::config::schema::NOTIFY_EVENTS;

fn check_notify_on(owner: &str, values: &[String], path: &str, cx: &mut Ctx<'_>) {
    for (i, v) in values.iter().enumerate() {
        if !NOTIFY_EVENTS.contains(&v.as_str()) {
            let hint = did_you_mean(v, NOTIFY_EVENTS)
                .unwrap_or_else(|| format!("; valid events are {}", list(NOTIFY_EVENTS)));
            cx.err(
                &format!("{path}.{i}"),
                format!("{owner}: unknown `notify_on` event `{v}`{hint}"),
            );
        }
    }
}

pub(super) fn check_notifications(raw: &RawConfig, cx: &mut Ctx<'_>) {
    if let Some(n) = &raw.notifications {
        if let Some(v) = &n.notify_on {
            check_notify_on("`[notifications]`", v, "notifications.notify_on", cx);
        }
        if let Some(url) = &n.discord_webhook_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            cx.err(
                "notifications.discord_webhook_url",
                "`discord_webhook_url` must be an http(s) URL",
            );
        }
    }
}

/// `notify_on` (service → profile → `[notifications]` → default) and
/// `notifiers` (service → profile).
pub(super) fn of_service(
    v: &ServiceCx<'_>,
    cx: &mut Ctx<'_>,
) -> (Vec<String>, Option<Vec<String>>) {
    let ServiceCx { name, raw, .. } = *v;
    let (notify, path) = v.pick("notify_on", |r| &r.notify_on);
    let notify_on = match notify {
        Some(v) => {
            check_notify_on(&format!("service `{name}`"), v, &path, cx);
            v.clone()
        }
        None => raw
            .notifications
            .as_ref()
            .and_then(|n| n.notify_on.clone())
            .unwrap_or_else(|| DEFAULT_NOTIFY_ON.iter().map(ToString::to_string).collect()),
    };

    let (notifiers, path) = v.pick("notifiers", |r| &r.notifiers);
    if let Some(list) = notifiers {
        let found = crate::config::notify::check_service_notifiers(
            &format!("service `{name}`"),
            list,
            &path,
            raw,
            cx.loc,
        );
        cx.errors.extend(found);
    }
    (notify_on, notifiers.cloned())
}

//! `targets` and `replication`: which destinations a service backs up to,
//! and how.

use std::collections::{BTreeMap, BTreeSet};

use super::service::ServiceCx;
use super::{Ctx, parse_replication};
use crate::config::load::list;
use crate::config::{Destination, Replication, did_you_mean};

/// A destination name for examples in messages.
fn dest_names_example(destinations: &BTreeMap<String, Destination>) -> &str {
    destinations.keys().next().map_or("local", String::as_str)
}

/// `targets`: service → profile; each must name a destination, once.
pub(super) fn targets(v: &ServiceCx<'_>, cx: &mut Ctx<'_>) -> Vec<String> {
    let ServiceCx {
        name,
        s,
        spath,
        pr,
        named_profile,
        raw,
        destinations,
        ..
    } = *v;
    let (targets, tpath) = v.pick("targets", |r| &r.targets);
    let targets = targets.cloned().unwrap_or_default();
    if targets.is_empty() {
        let from = match (&s.targets, &s.profile) {
            (None, Some(p)) if pr.is_some_and(|p| p.targets.is_some()) => {
                format!(" (`targets = []` comes from profile `{p}`)")
            }
            _ => String::new(),
        };
        let example = dest_names_example(destinations);
        cx.missing(
            &[spath, named_profile],
            &tpath,
            format!("service `{name}` has no `targets`{from}; list at least one destination, e.g. `targets = [\"{example}\"]`"),
        );
    }
    let dest_names: Vec<&str> = destinations.keys().map(String::as_str).collect();
    let mut uniq = BTreeSet::new();
    for (i, t) in targets.iter().enumerate() {
        if !uniq.insert(t) {
            cx.err(
                &format!("{tpath}.{i}"),
                format!("service `{name}` lists target `{t}` twice"),
            );
        }
        if !destinations.contains_key(t)
            && !raw.destinations.contains_key(t)
            && !raw.broken_destinations.contains(t)
        {
            let mut msg =
                format!("service `{name}` targets destination `{t}`, which is not defined");
            if let Some(hint) = did_you_mean(t, &dest_names) {
                msg.push_str(&hint);
            } else if dest_names.is_empty() {
                msg.push_str(&format!("; add a `[destinations.{t}]` table"));
            } else {
                msg.push_str(&format!("; defined destinations: {}", list(&dest_names)));
            }
            cx.err(&format!("{tpath}.{i}"), msg);
        }
    }
    targets
}

/// `replication`: service → profile → global → `parallel`; `copy` needs a
/// second target to copy to.
pub(super) fn replication(v: &ServiceCx<'_>, targets: usize, cx: &mut Ctx<'_>) -> Replication {
    let ServiceCx { name, g, .. } = *v;
    let (rep, path) = v.pick("replication", |r| &r.replication);
    let replication = match rep.or(g.replication.as_ref()).map(|r| parse_replication(r)) {
        None => Replication::Parallel,
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            if rep.is_some() {
                cx.err(&path, format!("service `{name}`: {e}"));
            }
            Replication::Parallel
        }
    };
    if replication == Replication::Copy && targets < 2 {
        cx.err(
            &path,
            format!("service `{name}`: `replication = \"copy\"` needs at least two targets (the first is backed up, the others receive copies)"),
        );
    }
    replication
}

//! The launchd backend (macOS): one property list per scheduled service.
//!
//! `StartCalendarInterval` takes a list of dictionaries, each a conjunction
//! of single values where a missing key means "any", so a cron expression
//! becomes the product of its restricted fields. Generated and tested
//! everywhere; installed only on macOS.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Backend, Entry, File, ScheduleError, Scope, xml_escape};
use crate::config::cron_expr::{CronExpr, Field};

/// More dictionaries than this is not a schedule launchd should be given.
const MAX_INTERVALS: usize = 500;

/// The job label of a service.
pub fn label(service: &str) -> String {
    format!("org.restic-manager.{service}")
}

/// Where plists live.
pub fn plist_dir(scope: Scope) -> PathBuf {
    match scope {
        Scope::System => PathBuf::from("/Library/LaunchDaemons"),
        Scope::User => std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join("Library/LaunchAgents"),
    }
}

/// The `StartCalendarInterval` dictionaries, as key/value lists.
pub fn intervals(expr: &str) -> Result<Vec<Vec<(&'static str, u32)>>, ScheduleError> {
    let e = CronExpr::parse(expr).map_err(|source| ScheduleError::Inexpressible {
        backend: Backend::Launchd,
        source,
    })?;
    let set = |f: &Field| (!f.all).then(|| f.values.clone());
    let fields = |dom: Option<BTreeSet<u32>>, dow: Option<BTreeSet<u32>>| {
        vec![
            ("Minute", set(&e.minute)),
            ("Hour", set(&e.hour)),
            ("Day", dom),
            ("Month", set(&e.month)),
            ("Weekday", dow),
        ]
    };
    // Both day fields in one dictionary would be AND; cron means OR when
    // neither starts with `*`, so each gets its own dictionaries.
    let groups = if e.days_or() {
        vec![
            fields(set(&e.dom), None),
            fields(None, Some(e.dow.values.clone())),
        ]
    } else {
        vec![fields(set(&e.dom), set(&e.dow))]
    };
    let mut out = Vec::new();
    for g in groups {
        let mut acc: Vec<Vec<(&'static str, u32)>> = vec![Vec::new()];
        for (key, values) in g {
            let Some(values) = values else { continue };
            acc = acc
                .into_iter()
                .flat_map(|d| {
                    values.iter().map(move |v| {
                        let mut d = d.clone();
                        d.push((key, *v));
                        d
                    })
                })
                .collect();
            if acc.len() > MAX_INTERVALS {
                return Err(ScheduleError::TooManyIntervals {
                    expr: expr.to_string(),
                    max: MAX_INTERVALS,
                });
            }
        }
        out.extend(acc);
    }
    Ok(out)
}

fn string(s: &str) -> String {
    format!("<string>{}</string>", xml_escape(s))
}

/// The plist of one entry.
pub fn plist(e: &Entry, dir: &Path) -> Result<File, ScheduleError> {
    let ivs = intervals(&e.schedule).map_err(|err| err.of(&e.service))?;
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<!-- Managed by restic-manager; do not edit. -->\n<plist version=\"1.0\">\n<dict>\n",
    );
    s.push_str(&format!(
        "  <key>Label</key>\n  {}\n",
        string(&label(&e.unit()))
    ));
    s.push_str("  <key>ProgramArguments</key>\n  <array>\n");
    s.push_str(&format!("    {}\n", string(&e.program.to_string_lossy())));
    for a in &e.args {
        s.push_str(&format!("    {}\n", string(a)));
    }
    s.push_str("  </array>\n  <key>EnvironmentVariables</key>\n  <dict>\n");
    for (k, v) in &e.env {
        s.push_str(&format!(
            "    <key>{}</key>\n    {}\n",
            xml_escape(k),
            string(v)
        ));
    }
    s.push_str(&format!(
        "    <key>{}</key>\n    <string>launchd</string>\n",
        super::TRIGGER_VAR
    ));
    s.push_str("  </dict>\n  <key>StartCalendarInterval</key>\n  <array>\n");
    for d in ivs {
        s.push_str("    <dict>");
        for (k, v) in d {
            s.push_str(&format!("<key>{k}</key><integer>{v}</integer>"));
        }
        s.push_str("</dict>\n");
    }
    let log = e.log_file.to_string_lossy();
    s.push_str(&format!(
        "  </array>\n  <key>StandardOutPath</key>\n  {l}\n  <key>StandardErrorPath</key>\n  {l}\n</dict>\n</plist>\n",
        l = string(&log)
    ));
    Ok(File {
        path: dir.join(format!("{}.plist", label(&e.unit()))),
        content: s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testutil::entry;

    #[test]
    fn calendar_intervals() {
        let ok = |c: &str| intervals(c).unwrap();
        assert_eq!(ok("* * * * *"), vec![Vec::<(&str, u32)>::new()]);
        assert_eq!(ok("30 2 * * *"), vec![vec![("Minute", 30), ("Hour", 2)]]);
        assert_eq!(
            ok("0 3 * * 1,5"),
            vec![
                vec![("Minute", 0), ("Hour", 3), ("Weekday", 1)],
                vec![("Minute", 0), ("Hour", 3), ("Weekday", 5)]
            ]
        );
        assert_eq!(ok("*/15 * * * *").len(), 4);
        assert_eq!(
            ok("0 0 1 * 1"),
            vec![
                vec![("Minute", 0), ("Hour", 0), ("Day", 1)],
                vec![("Minute", 0), ("Hour", 0), ("Weekday", 1)]
            ]
        );
        assert!(intervals("0-58 0-22 * * *").is_err());
    }

    #[test]
    fn plist_content() {
        let mut e = entry("wiki", "30 2 * * *");
        e.args[1] = "/Users/ann/a&b/config.toml".into();
        let f = plist(&e, Path::new("/L")).unwrap();
        assert_eq!(f.path, Path::new("/L/org.restic-manager.wiki.plist"));
        for want in [
            "<key>Label</key>\n  <string>org.restic-manager.wiki</string>",
            "<string>/opt/rm/bin/restic-manager</string>\n    <string>--config</string>\n    <string>/Users/ann/a&amp;b/config.toml</string>\n    <string>run</string>\n    <string>--service</string>\n    <string>wiki</string>\n    <string>-q</string>",
            "<key>HOME</key>\n    <string>/home/ann</string>",
            "<dict><key>Minute</key><integer>30</integer><key>Hour</key><integer>2</integer></dict>",
            "<key>StandardOutPath</key>\n  <string>/home/ann/logs/schedule-wiki.log</string>",
        ] {
            assert!(
                f.content.contains(want),
                "{want}\n--- plist:\n{}",
                f.content
            );
        }
    }
}

//! The systemd backend: a `.service` and a `.timer` per scheduled service.
//!
//! The cron expression becomes `OnCalendar=` lines. Units carry a marker
//! comment so an install can find and remove the units of services that are
//! gone without touching units that are not ours. `Persistent=true` makes
//! systemd catch up a run missed while the machine was off.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Backend, Entry, File, ScheduleError, Scope};
use crate::config::cron_expr::{CronExpr, Field};
use crate::process::{Shutdown, Spec};

/// The first line of every unit we write.
pub const MARKER: &str =
    "# Managed by restic-manager; do not edit (`restic-manager schedule install` rewrites it).";

const PREFIX: &str = "restic-manager-";

/// The unit name (without suffix) for a service.
pub fn unit_name(service: &str) -> Result<String, ScheduleError> {
    if service.is_empty()
        || !service
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
    {
        return Err(ScheduleError::UnitName {
            service: service.to_string(),
        });
    }
    Ok(format!("{PREFIX}{service}"))
}

/// Where units live.
pub fn unit_dir(scope: Scope) -> PathBuf {
    match scope {
        Scope::System => PathBuf::from("/etc/systemd/system"),
        Scope::User => std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
            .unwrap_or_else(|| PathBuf::from(".config"))
            .join("systemd/user"),
    }
}

fn pad(v: u32) -> String {
    format!("{v:02}")
}

/// A numeric field in systemd's calendar syntax: `*`, `a/n`, runs as
/// `a..b`, single values, joined with commas.
fn numeric(f: &Field, hi: u32) -> String {
    if f.all {
        return "*".into();
    }
    let v: Vec<u32> = f.values.iter().copied().collect();
    // Three values or more, so `1,7` stays a list rather than `1/6`.
    if v.len() >= 3 {
        let step = v[1] - v[0];
        let progression = step > 1 && v.windows(2).all(|w| w[1] - w[0] == step);
        if progression && v[v.len() - 1] + step > hi {
            return format!("{}/{step}", pad(v[0]));
        }
    }
    runs(&v, pad)
}

/// Consecutive runs of three or more as `a..b`, the rest listed.
fn runs<T>(v: &[u32], show: impl Fn(u32) -> T) -> String
where
    T: std::fmt::Display,
{
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if j - i >= 2 {
            out.push(format!("{}..{}", show(v[i]), show(v[j])));
        } else {
            out.extend(v[i..=j].iter().map(|x| show(*x).to_string()));
        }
        i = j + 1;
    }
    out.join(",")
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// Cron's 0 = Sunday … 6 = Saturday as systemd's Monday-first names.
fn weekdays(days: &BTreeSet<u32>) -> String {
    // Monday-first positions: Monday 0 … Sunday 6.
    let v: Vec<u32> = days
        .iter()
        .map(|d| (d + 6) % 7)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    runs(&v, |i| WEEKDAYS[i as usize % 7])
}

/// `OnCalendar=` values for a cron expression. Usually one; two when both
/// day fields are restricted (cron matches either, systemd would need both).
pub fn on_calendar(expr: &str) -> Result<Vec<String>, ScheduleError> {
    let e = CronExpr::parse(expr).map_err(|source| ScheduleError::Inexpressible {
        backend: Backend::Systemd,
        source,
    })?;
    let time = format!("{}:{}:00", numeric(&e.hour, 23), numeric(&e.minute, 59));
    let month = numeric(&e.month, 12);
    let one = |dow: Option<&BTreeSet<u32>>, dom: &str| {
        let date = format!("*-{month}-{dom} {time}");
        match dow {
            Some(d) => format!("{} {date}", weekdays(d)),
            None => date,
        }
    };
    let dom = numeric(&e.dom, 31);
    if e.days_or() {
        return Ok(vec![one(None, &dom), one(Some(&e.dow.values), "*")]);
    }
    let dow = (!e.dow.all).then_some(&e.dow.values);
    Ok(vec![one(dow, &dom)])
}

/// A value for `ExecStart=`/`Environment=`: double-quoted, with systemd's
/// specifier (`%`) and variable (`$`) characters escaped.
fn quote(s: &str, dollar: bool) -> String {
    let mut q = s
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%");
    if dollar {
        q = q.replace('$', "$$");
    }
    format!("\"{q}\"")
}

/// The `.service` and `.timer` of one entry.
pub fn units(e: &Entry, dir: &Path, jitter: Option<u64>) -> Result<[File; 2], ScheduleError> {
    let name = unit_name(&e.unit())?;
    let calendars = on_calendar(&e.schedule).map_err(|err| err.of(&e.service))?;
    let mut exec = vec![quote(&e.program.to_string_lossy(), true)];
    exec.extend(e.args.iter().map(|a| quote(a, true)));
    let mut service = format!(
        "{MARKER}\n[Unit]\nDescription=restic-manager {job} of service {svc}\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=oneshot\n",
        svc = e.service,
        job = e.job.as_str()
    );
    for (k, v) in &e.env {
        service.push_str(&format!(
            "Environment={}\n",
            quote(&format!("{k}={v}"), false)
        ));
    }
    service.push_str(&format!(
        "Environment={}\n",
        quote(&format!("{}=systemd", super::TRIGGER_VAR), false)
    ));
    service.push_str(&format!("ExecStart={}\n", exec.join(" ")));
    let mut timer = format!(
        "{MARKER}\n[Unit]\nDescription=Schedule of the restic-manager {job} of service {svc} ({cron})\n\n[Timer]\n",
        svc = e.service,
        job = e.job.as_str(),
        cron = e.schedule
    );
    for c in calendars {
        timer.push_str(&format!("OnCalendar={c}\n"));
    }
    timer.push_str("Persistent=true\n");
    if let Some(j) = jitter.filter(|j| *j > 0) {
        timer.push_str(&format!("RandomizedDelaySec={j}\n"));
    }
    timer.push_str("\n[Install]\nWantedBy=timers.target\n");
    Ok([
        File {
            path: dir.join(format!("{name}.service")),
            content: service,
        },
        File {
            path: dir.join(format!("{name}.timer")),
            content: timer,
        },
    ])
}

/// Our units in `dir` (marker on the first line).
pub fn managed_units(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|d| d.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.starts_with(PREFIX) && (n.ends_with(".service") || n.ends_with(".timer"))
        })
        .filter(|p| std::fs::read_to_string(p).is_ok_and(|c| c.starts_with(MARKER)))
        .collect();
    out.sort();
    out
}

/// Runs `systemctl [--user] ARGS`.
pub async fn systemctl(scope: Scope, args: &[&str]) -> Result<(), ScheduleError> {
    let mut spec = Spec::new("systemctl");
    if scope == Scope::User {
        spec = spec.arg("--user");
    }
    spec = spec.args(args.iter().copied());
    spec.timeout = Some(Duration::from_secs(60));
    let shown = spec.display();
    let out = spec.run(&Shutdown::never(), |_| {}, |_| {}).await?;
    if out.ended.success() {
        Ok(())
    } else {
        Err(ScheduleError::Command {
            command: shown,
            ended: out.ended.describe(),
            stderr: out.stderr.trim().to_string(),
        })
    }
}

/// Asks `systemd-analyze calendar` whether systemd accepts `spec`; `None`
/// when the tool is not installed.
pub async fn analyze_calendar(spec: &str) -> Option<Result<(), ScheduleError>> {
    super::on_path("systemd-analyze")?;
    let mut s = Spec::new("systemd-analyze").args(["calendar", spec]);
    s.timeout = Some(Duration::from_secs(30));
    let out = match s.run(&Shutdown::never(), |_| {}, |_| {}).await {
        Ok(o) => o,
        Err(e) => return Some(Err(e.into())),
    };
    Some(if out.ended.success() {
        Ok(())
    } else {
        Err(ScheduleError::CalendarRejected {
            spec: spec.to_string(),
            stderr: out.stderr.trim().to_string(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testutil::entry;

    #[test]
    fn cron_to_on_calendar() {
        for (cron, want) in [
            ("* * * * *", vec!["*-*-* *:*:00"]),
            ("30 2 * * *", vec!["*-*-* 02:30:00"]),
            ("*/15 * * * *", vec!["*-*-* *:00/15:00"]),
            ("5/20 */6 * * *", vec!["*-*-* 00/6:05/20:00"]),
            ("0,30 9-17 * * *", vec!["*-*-* 09..17:00,30:00"]),
            ("0,20,40 * * * *", vec!["*-*-* *:00/20:00"]),
            ("0 9,12 * * *", vec!["*-*-* 09,12:00:00"]),
            ("0 3 * * 1-5", vec!["Mon..Fri *-*-* 03:00:00"]),
            ("0 3 * * MON-FRI", vec!["Mon..Fri *-*-* 03:00:00"]),
            ("0 3 * * 0", vec!["Sun *-*-* 03:00:00"]),
            ("0 3 * * 7", vec!["Sun *-*-* 03:00:00"]),
            ("0 3 * * sat,sun", vec!["Sat,Sun *-*-* 03:00:00"]),
            ("0 3 * * 0-7", vec!["*-*-* 03:00:00"]),
            ("0 3 * * */2", vec!["Tue,Thu,Sat,Sun *-*-* 03:00:00"]),
            ("0 4 1,15 * *", vec!["*-*-01,15 04:00:00"]),
            ("0 4 1 jan,jul *", vec!["*-01,07-01 04:00:00"]),
            ("0 4 1 */3 *", vec!["*-01/3-01 04:00:00"]),
            ("0 0 1-10/3 * *", vec!["*-*-01,04,07,10 00:00:00"]),
            ("0 0 1 * 1", vec!["*-*-01 00:00:00", "Mon *-*-* 00:00:00"]),
            // A day-of-week starting with `*` means AND in cron, as in systemd.
            ("0 0 1 * */2", vec!["Tue,Thu,Sat,Sun *-*-01 00:00:00"]),
        ] {
            assert_eq!(
                on_calendar(cron).map_err(|e| e.to_string()),
                Ok(want.iter().map(ToString::to_string).collect()),
                "{cron}"
            );
        }
    }

    #[test]
    fn inexpressible_expressions_say_so() {
        for cron in ["0 0 L * *", "0 0 * * 5#2", "0 0 15W * *"] {
            let Err(e) = on_calendar(cron).map_err(|e| e.to_string()) else {
                panic!("{cron} was converted")
            };
            assert!(
                e.contains("cannot be expressed") && e.contains("--backend cron"),
                "{e}"
            );
        }
    }

    #[test]
    fn unit_content() {
        let mut e = entry("wiki", "*/15 * * * *");
        e.args[1] = "/home/ann/100% configs/c.toml".into();
        let [svc, timer] = units(&e, Path::new("/u"), Some(300)).unwrap();
        assert_eq!(svc.path, Path::new("/u/restic-manager-wiki.service"));
        assert_eq!(timer.path, Path::new("/u/restic-manager-wiki.timer"));
        assert!(svc.content.starts_with(MARKER));
        assert!(svc.content.contains("Type=oneshot\n"));
        assert!(svc.content.contains("Environment=\"HOME=/home/ann\"\n"));
        assert!(svc.content.contains(
            "ExecStart=\"/opt/rm/bin/restic-manager\" \"--config\" \"/home/ann/100%% configs/c.toml\" \"run\" \"--service\" \"wiki\" \"-q\"\n"
        ), "{}", svc.content);
        assert!(
            timer
                .content
                .contains("OnCalendar=*-*-* *:00/15:00\nPersistent=true\nRandomizedDelaySec=300\n"),
            "{}",
            timer.content
        );
        assert!(timer.content.contains("WantedBy=timers.target"));
        let [_, t] = units(&e, Path::new("/u"), None).unwrap();
        assert!(!t.content.contains("RandomizedDelaySec"));
        assert!(units(&entry("a b", "* * * * *"), Path::new("/u"), None).is_err());
    }
}

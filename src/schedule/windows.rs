//! The Windows backend: a Task Scheduler task (`schtasks /Create /XML`) per
//! scheduled service.
//!
//! A calendar trigger fires at one time of day on chosen days, optionally
//! repeating every few minutes, so a cron expression becomes one trigger per
//! time of day (or one repeating trigger for `*/n` minutes) times one
//! trigger per day rule. Generated and tested everywhere; installed only on
//! Windows.

use std::collections::BTreeSet;

use super::{Backend, Entry, File, ScheduleError, xml_escape};
use crate::config::cron_expr::{CronExpr, Field};

/// Task Scheduler accepts at most 48 triggers per task.
const MAX_TRIGGERS: usize = 48;

const DAY_NAMES: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// The task's path in the Task Scheduler library.
pub fn task_name(service: &str) -> String {
    format!("restic-manager\\{service}")
}

/// Times of day: `(hour, minute, repeat every n minutes)`.
fn times(e: &CronExpr) -> Vec<(u32, u32, Option<u32>)> {
    let m: Vec<u32> = e.minute.values.iter().copied().collect();
    if e.hour.all && !m.is_empty() {
        let step = if m.len() > 1 { m[1] - m[0] } else { 60 };
        let even = m.windows(2).all(|w| w[1] - w[0] == step);
        if even && 60 % step == 0 && m[0] < step {
            return vec![(0, m[0], Some(step))];
        }
    }
    let mut out = Vec::new();
    for h in &e.hour.values {
        for mm in &m {
            out.push((*h, *mm, None));
        }
    }
    out
}

fn months(f: &Field) -> String {
    let mut s = String::from("<Months>");
    for m in &f.values {
        if let Some(n) = MONTH_NAMES.get(*m as usize - 1) {
            s.push_str(&format!("<{n} />"));
        }
    }
    s.push_str("</Months>");
    s
}

fn days_of_week(d: &BTreeSet<u32>) -> String {
    let mut s = String::from("<DaysOfWeek>");
    for v in d {
        s.push_str(&format!("<{} />", DAY_NAMES[*v as usize % 7]));
    }
    s.push_str("</DaysOfWeek>");
    s
}

/// The `ScheduleBy…` elements, one per trigger family.
fn day_rules(e: &CronExpr) -> Result<Vec<String>, ScheduleError> {
    let by_dom = |dom: &Field| {
        let mut s = String::from("<ScheduleByMonth><DaysOfMonth>");
        for d in &dom.values {
            s.push_str(&format!("<Day>{d}</Day>"));
        }
        s.push_str(&format!(
            "</DaysOfMonth>{}</ScheduleByMonth>",
            months(&e.month)
        ));
        s
    };
    let by_dow = |dow: &BTreeSet<u32>| {
        if e.month.all {
            format!(
                "<ScheduleByWeek><WeeksInterval>1</WeeksInterval>{}</ScheduleByWeek>",
                days_of_week(dow)
            )
        } else {
            format!(
                "<ScheduleByMonthDayOfWeek><Weeks><Week>1</Week><Week>2</Week><Week>3</Week><Week>4</Week><Week>Last</Week></Weeks>{}{}</ScheduleByMonthDayOfWeek>",
                days_of_week(dow),
                months(&e.month)
            )
        }
    };
    Ok(match (e.dom.all, e.dow.all) {
        (true, true) if e.month.all => {
            vec!["<ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>".into()]
        }
        (true, true) => vec![by_dom(&e.dom)],
        (false, true) => vec![by_dom(&e.dom)],
        (true, false) => vec![by_dow(&e.dow.values)],
        (false, false) if e.days_or() => vec![by_dom(&e.dom), by_dow(&e.dow.values)],
        (false, false) => {
            return Err(ScheduleError::BothDayFieldsStepped {
                expr: e.text.clone(),
            });
        }
    })
}

/// One argument for a Windows command line.
fn win_arg(a: &str) -> String {
    if !a.is_empty() && !a.contains([' ', '\t', '"']) {
        return a.to_string();
    }
    format!("\"{}\"", a.replace('"', "\\\""))
}

/// The task XML of one entry. Written as UTF-16 when installed, as
/// `schtasks` expects.
pub fn task_xml(e: &Entry, jitter: Option<u64>) -> Result<File, ScheduleError> {
    let x = CronExpr::parse(&e.schedule).map_err(|source| {
        ScheduleError::Inexpressible {
            backend: Backend::Windows,
            source,
        }
        .of(&e.service)
    })?;
    let rules = day_rules(&x).map_err(|err| err.of(&e.service))?;
    let times = times(&x);
    if times.len() * rules.len() > MAX_TRIGGERS {
        return Err(ScheduleError::TooManyTriggers {
            expr: e.schedule.clone(),
            needed: times.len() * rules.len(),
            max: MAX_TRIGGERS,
        }
        .of(&e.service));
    }
    let mut triggers = String::new();
    for rule in &rules {
        for (h, m, every) in &times {
            triggers.push_str("    <CalendarTrigger>\n");
            if let Some(n) = every {
                triggers.push_str(&format!(
                    "      <Repetition><Interval>PT{n}M</Interval><Duration>P1D</Duration><StopAtDurationEnd>false</StopAtDurationEnd></Repetition>\n"
                ));
            }
            triggers.push_str(&format!(
                "      <StartBoundary>2000-01-01T{h:02}:{m:02}:00</StartBoundary>\n      <Enabled>true</Enabled>\n"
            ));
            if let Some(j) = jitter.filter(|j| *j > 0) {
                triggers.push_str(&format!("      <RandomDelay>PT{j}S</RandomDelay>\n"));
            }
            triggers.push_str(&format!("      {rule}\n    </CalendarTrigger>\n"));
        }
    }
    let args: Vec<String> = e.args.iter().map(|a| win_arg(a)).collect();
    let content = format!(
        r#"<?xml version="1.0" encoding="UTF-16"?>
<!-- Managed by restic-manager; do not edit. -->
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <RegistrationInfo>
    <Description>restic-manager {job} of service {svc} ({cron})</Description>
    <URI>\{uri}</URI>
  </RegistrationInfo>
  <Triggers>
{triggers}  </Triggers>
  <Settings>
    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>
    <StartWhenAvailable>true</StartWhenAvailable>
    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>
    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>
    <ExecutionTimeLimit>PT0S</ExecutionTimeLimit>
    <Enabled>true</Enabled>
  </Settings>
  <Actions Context="Author">
    <Exec>
      <Command>{cmd}</Command>
      <Arguments>{args}</Arguments>
    </Exec>
  </Actions>
</Task>
"#,
        svc = xml_escape(&e.service),
        job = e.job.as_str(),
        cron = xml_escape(&e.schedule),
        uri = xml_escape(&task_name(&e.unit())),
        cmd = xml_escape(&e.program.to_string_lossy()),
        args = xml_escape(&args.join(" ")),
    );
    Ok(File {
        path: format!("restic-manager-{}.xml", e.unit()).into(),
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testutil::entry;

    fn xml(cron: &str) -> String {
        task_xml(&entry("wiki", cron), None).unwrap().content
    }

    #[test]
    fn daily_task() {
        let mut e = entry("wiki", "30 2 * * *");
        e.args[1] = r"C:\Users\Ann Lee\config.toml".into();
        let t = task_xml(&e, Some(120)).unwrap().content;
        for want in [
            "<URI>\\restic-manager\\wiki</URI>",
            "<StartBoundary>2000-01-01T02:30:00</StartBoundary>",
            "<RandomDelay>PT120S</RandomDelay>",
            "<ScheduleByDay><DaysInterval>1</DaysInterval></ScheduleByDay>",
            "<Command>/opt/rm/bin/restic-manager</Command>",
            "<Arguments>--config &quot;C:\\Users\\Ann Lee\\config.toml&quot; run --service wiki -q</Arguments>",
            "<MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>",
            "<StartWhenAvailable>true</StartWhenAvailable>",
        ] {
            assert!(t.contains(want), "{want}\n--- xml:\n{t}");
        }
        assert_eq!(t.matches("<CalendarTrigger>").count(), 1);
    }

    #[test]
    fn triggers_for_other_shapes() {
        let t = xml("*/15 * * * *");
        assert!(t.contains("<Interval>PT15M</Interval>"), "{t}");
        assert_eq!(t.matches("<CalendarTrigger>").count(), 1);
        let t = xml("* * * * *");
        assert!(t.contains("<Interval>PT1M</Interval>"), "{t}");
        let t = xml("0 3 * * 1-5");
        assert!(t.contains("<ScheduleByWeek><WeeksInterval>1</WeeksInterval><DaysOfWeek><Monday /><Tuesday /><Wednesday /><Thursday /><Friday /></DaysOfWeek></ScheduleByWeek>"), "{t}");
        let t = xml("0 4 1,15 jan *");
        assert!(
            t.contains(
                "<DaysOfMonth><Day>1</Day><Day>15</Day></DaysOfMonth><Months><January /></Months>"
            ),
            "{t}"
        );
        let t = xml("0 6,18 1 * 0");
        assert_eq!(t.matches("<CalendarTrigger>").count(), 4, "{t}");
        assert!(task_xml(&entry("wiki", "0 0 1 * */2"), None).is_err());
        let t = xml("7 * * * *");
        assert!(
            t.contains("<Interval>PT60M</Interval>") && t.contains("T00:07:00"),
            "{t}"
        );
        assert!(task_xml(&entry("wiki", "1,2,3,4,5 */2 * * *"), None).is_err());
    }
}

//! The cron backend: one marked block in the user's crontab.
//!
//! Everything between the BEGIN and END markers belongs to us and is
//! rewritten whole on every install, so a removed or renamed service loses
//! its line; every other line of the crontab is kept byte for byte.
//! Environment goes on each command line, not as `NAME=value` lines: cron
//! applies those to every line that follows, the user's own included.

use std::time::Duration;

use super::{Entry, ScheduleError, sh_quote};
use crate::process::{self, Shutdown, Spec};

pub const BEGIN: &str = "# BEGIN restic-manager (managed, do not edit)";
pub const END: &str = "# END restic-manager";

/// The crontab line of one entry.
pub fn line(e: &Entry) -> String {
    let mut cmd: Vec<String> = e
        .env
        .iter()
        .map(|(k, v)| format!("{k}={}", sh_quote(v)))
        .collect();
    cmd.push(format!("{}=cron", super::TRIGGER_VAR));
    cmd.push(sh_quote(&e.program.to_string_lossy()));
    cmd.extend(e.args.iter().map(|a| sh_quote(a)));
    cmd.push(format!(
        ">> {} 2>&1",
        sh_quote(&e.log_file.to_string_lossy())
    ));
    // `%` ends the command in a crontab line unless escaped.
    format!("{} {}", e.schedule, cmd.join(" ").replace('%', "\\%"))
}

/// The managed block (markers included), or an empty string for no entries.
pub fn block(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let mut s = format!("{BEGIN}\n");
    for e in entries {
        let what = match e.job {
            super::Job::Backup => String::new(),
            j => format!("{} of ", j.as_str()),
        };
        s.push_str(&format!("# {what}service `{}`\n{}\n", e.service, line(e)));
    }
    s.push_str(END);
    s.push('\n');
    s
}

/// `current` with its managed block replaced by `block` (removed when
/// `block` is empty). The block stays where it was; a new one goes at the
/// end.
pub fn merge(current: &str, block: &str) -> Result<String, ScheduleError> {
    let lines: Vec<&str> = current.lines().collect();
    let begin = lines.iter().position(|l| l.trim_end() == BEGIN);
    let end = lines.iter().position(|l| l.trim_end() == END);
    let (before, after): (&[&str], &[&str]) = match (begin, end) {
        (Some(b), Some(e)) if b < e => (&lines[..b], &lines[e + 1..]),
        (None, None) => (&lines[..], &[]),
        _ => return Err(ScheduleError::BrokenCrontab),
    };
    let mut out = String::new();
    for l in before {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str(block);
    for l in after {
        out.push_str(l);
        out.push('\n');
    }
    Ok(out)
}

/// The managed block inside `current`, if any.
pub fn current_block(current: &str) -> Option<String> {
    let start = current.find(BEGIN)?;
    let end = current[start..].find(END)? + start + END.len();
    Some(format!("{}\n", &current[start..end]))
}

fn crontab(args: &[&str]) -> Spec {
    let mut s = Spec::new("crontab").args(args.iter().copied());
    s.timeout = Some(Duration::from_secs(30));
    s
}

/// The user's crontab (`crontab -l`); "no crontab for USER" is empty.
pub async fn read() -> Result<String, ScheduleError> {
    let out = crontab(&["-l"])
        .run(&Shutdown::never(), |_| {}, |_| {})
        .await
        .map_err(ScheduleError::NoCrontab)?;
    if out.ended.success() {
        return Ok(out.stdout);
    }
    if out.stderr.contains("no crontab for") {
        return Ok(String::new());
    }
    Err(ScheduleError::Command {
        command: "crontab -l".into(),
        ended: out.ended.describe(),
        stderr: out.stderr.trim().to_string(),
    })
}

/// Replaces the user's crontab (`crontab -`).
pub async fn write(text: &str) -> Result<(), ScheduleError> {
    let spec = crontab(&["-"]).stdin(process::Stdin::Data(text.as_bytes().to_vec()));
    let out = spec.run(&Shutdown::never(), |_| {}, |_| {}).await?;
    if out.ended.success() {
        Ok(())
    } else {
        Err(ScheduleError::CrontabRefused {
            ended: out.ended.describe(),
            stderr: out.stderr.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::testutil::entry;

    #[test]
    fn line_quotes_and_escapes() {
        let mut e = entry("wiki", "30 2 * * *");
        e.env
            .push(("XDG_STATE_HOME".into(), "/home/ann/my state%".into()));
        assert_eq!(
            line(&e),
            "30 2 * * * PATH=/usr/bin:/bin HOME=/home/ann XDG_STATE_HOME='/home/ann/my state\\%' RESTIC_MANAGER_TRIGGER=cron /opt/rm/bin/restic-manager --config /home/ann/.config/restic-manager/config.toml run --service wiki -q >> /home/ann/logs/schedule-wiki.log 2>&1"
        );
    }

    #[test]
    fn merge_keeps_user_lines_and_replaces_the_block() {
        let user = "MAILTO=ann\n0 * * * * /home/ann/bin/sync\n";
        let first = block(&[entry("wiki", "30 2 * * *"), entry("db", "0 3 * * *")]);
        let once = merge(user, &first).unwrap();
        assert!(once.starts_with(user), "{once}");
        assert!(once.contains("--service wiki") && once.contains("--service db"));

        // A line after the block, then `db` renamed to `database`.
        let with_tail = format!("{once}15 1 * * * /home/ann/bin/tail\n");
        let second = block(&[entry("wiki", "30 2 * * *"), entry("database", "0 3 * * *")]);
        let twice = merge(&with_tail, &second).unwrap();
        assert!(!twice.contains("--service db "), "{twice}");
        assert!(twice.contains("--service database"));
        assert_eq!(twice.matches(BEGIN).count(), 1);
        assert!(twice.starts_with(user));
        assert!(
            twice.ends_with("15 1 * * * /home/ann/bin/tail\n"),
            "{twice}"
        );

        // Removing the block gives back the user's lines exactly.
        let removed = merge(&twice, "").unwrap();
        assert_eq!(removed, format!("{user}15 1 * * * /home/ann/bin/tail\n"));
        assert_eq!(merge("", "").unwrap_or_default(), "");
    }

    #[test]
    fn a_verify_entry_is_labelled_in_the_block() {
        let mut v = entry("wiki", "0 4 * * 0");
        v.job = crate::schedule::Job::Verify;
        v.args[2] = "verify".into();
        let b = block(&[entry("wiki", "30 2 * * *"), v]);
        assert!(
            b.contains("# service `wiki`\n30 2 * * * ")
                && b.contains("# verify of service `wiki`\n0 4 * * 0 ")
                && b.contains("RESTIC_MANAGER_TRIGGER=cron /opt/rm/bin/restic-manager --config /home/ann/.config/restic-manager/config.toml verify --service wiki -q"),
            "{b}"
        );
    }

    #[test]
    fn broken_block_is_refused() {
        let broken = format!("{BEGIN}\n* * * * * x\n");
        let Err(e) = merge(&broken, "") else {
            panic!("a broken block was accepted")
        };
        assert_eq!(
            e.to_string(),
            format!(
                "the crontab has a broken restic-manager block (`{BEGIN}` and `{END}` must both appear, in that order); fix it with `crontab -e` and try again"
            )
        );
    }
}

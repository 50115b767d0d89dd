//! Finding a child's descendants after they left its process group, and
//! children that outlived the manager that started them.
//!
//! A process group is not a container: `setsid`, `start-stop-daemon
//! --background`, `ssh -f` and double forks leave it, keep our pipes open,
//! and outlive the hook that started them. Every child gets
//! [`CHILD_ENV`]`=<manager>|<n>|<owner>` in its environment, which its
//! descendants inherit; scanning `/proc` for that value finds them wherever
//! they went. The manager is also a child subreaper (Linux
//! `PR_SET_CHILD_SUBREAPER`), so orphaned descendants are re-parented to
//! it instead of init: they stay inside our process tree and we reap them.
//! A cgroup per child would be stronger (it catches a descendant that
//! clears its environment), but needs a delegated cgroup subtree, which
//! cron jobs, containers and plain user sessions do not have.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// Marks every child and its descendants: `<manager>|<n>|<owner>`, where
/// manager is `<pid>.<start time>` of the restic-manager process, n counts
/// its children, and owner names the service run that started it
/// (`<service>@<lock directory>`; empty outside a service run).
pub const CHILD_ENV: &str = "RESTIC_MANAGER_CHILD";

/// This process as `<pid>.<start time in clock ticks>`: unique even after
/// the pid is reused.
pub fn manager_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let pid = std::process::id();
        let start = i32::try_from(pid)
            .ok()
            .and_then(stat_of)
            .map_or(0, |s| s.start);
        format!("{pid}.{start}")
    })
}

/// Makes this process the reaper of its orphaned descendants (Linux).
/// Call once at start-up.
pub fn become_subreaper() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_child_subreaper(true).map_err(|e| e.to_string())?;
        SUBREAPER.store(true, Ordering::Relaxed);
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

/// Whether [`become_subreaper`] succeeded: then every descendant, however
/// it left its parent, is still in our process tree.
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// What `/proc/PID/stat` says about a process.
#[derive(Debug, Clone, Copy)]
pub struct Stat {
    pub ppid: i32,
    pub pgrp: i32,
    pub zombie: bool,
    /// Start time after boot, in clock ticks.
    pub start: u64,
}

/// Reads `/proc/PID/stat`; `None` when the process is gone.
pub fn stat_of(pid: i32) -> Option<Stat> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields we want follow its last `)`.
    let rest = &raw[raw.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        zombie: f.first().is_some_and(|s| *s == "Z" || *s == "X"),
        ppid: f.get(1)?.parse().ok()?,
        pgrp: f.get(2)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// The value of [`CHILD_ENV`] in a process's environment (only readable
/// for our own user's processes, which is all we need).
fn child_env_of(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let key = format!("{CHILD_ENV}=");
    raw.split(|b| *b == 0)
        .find_map(|e| e.strip_prefix(key.as_bytes()))
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Every live process but us, with its stat.
fn all_processes() -> Vec<(i32, Stat)> {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| *p != me)
        .filter_map(|p| Some((p, stat_of(p)?)))
        .collect()
}

/// Our descendants, walked through `/proc/PID/task/TID/children`. `None`
/// when we are not a subreaper (an orphan may have gone to init) or the
/// kernel lacks that file: then only a scan of all of `/proc` finds them.
/// On a busy server this reads a handful of files instead of two per
/// process, after every child.
fn descendants() -> Option<Vec<(i32, Stat)>> {
    if !SUBREAPER.load(Ordering::Relaxed) {
        return None;
    }
    walk_descendants()
}

/// The walk of [`descendants`], whether or not we are a subreaper.
fn walk_descendants() -> Option<Vec<(i32, Stat)>> {
    let me = i32::try_from(std::process::id()).ok()?;
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue = vec![me];
    while let Some(pid) = queue.pop() {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            // Gone since its parent listed it; ours is always there.
            if pid == me {
                return None;
            }
            continue;
        };
        for task in tasks.flatten() {
            let list = match std::fs::read_to_string(task.path().join("children")) {
                Ok(l) => l,
                Err(_) if pid == me => return None,
                Err(_) => continue,
            };
            for child in list
                .split_whitespace()
                .filter_map(|c| c.parse::<i32>().ok())
            {
                if seen.insert(child) {
                    if let Some(st) = stat_of(child) {
                        found.push((child, st));
                    }
                    queue.push(child);
                }
            }
        }
    }
    Some(found)
}

/// The processes a child's leftovers can be among: our descendants when
/// we know them, else every process.
fn candidates() -> Vec<(i32, Stat)> {
    descendants().unwrap_or_else(all_processes)
}

/// Live (non-zombie) processes whose [`CHILD_ENV`] satisfies `want`.
fn carrying(among: Vec<(i32, Stat)>, want: impl Fn(&str) -> bool) -> Vec<(i32, Stat, String)> {
    among
        .into_iter()
        .filter(|(_, s)| !s.zombie)
        .filter_map(|(p, s)| {
            let v = child_env_of(p)?;
            want(&v).then_some((p, s, v))
        })
        .collect()
}

/// Processes of the child marked `token`: its process group (`pgid`) and
/// every process that inherited the token, wherever it went.
fn members(pgid: Option<u32>, token: &str) -> Vec<i32> {
    let pgid = pgid.and_then(|p| i32::try_from(p).ok());
    candidates()
        .into_iter()
        .filter(|(_, s)| !s.zombie)
        .filter(|(p, s)| Some(s.pgrp) == pgid || child_env_of(*p).is_some_and(|v| v == token))
        .map(|(p, _)| p)
        .collect()
}

fn send(pids: &[i32], pgid: Option<u32>, sig: Signal) {
    if let Some(g) = pgid.and_then(|p| i32::try_from(p).ok()) {
        let _ = killpg(Pid::from_raw(g), sig);
    }
    for p in pids {
        let _ = kill(Pid::from_raw(*p), sig);
    }
}

/// Kills everything left of a child at once (SIGKILL): its group and its
/// escaped descendants.
pub fn kill_now(pgid: Option<u32>, token: &str) {
    send(&members(pgid, token), pgid, Signal::SIGKILL);
}

/// After a child ended: asks what is left of it (its group and escaped
/// descendants) to stop with `sig`, waits up to `grace`, kills the rest,
/// and reaps the ones that were re-parented to us. Returns how many
/// processes were left.
pub async fn clean_up(pgid: Option<u32>, token: &str, sig: Signal, grace: Duration) -> usize {
    let left = members(pgid, token);
    if left.is_empty() {
        reap_adopted();
        return 0;
    }
    send(&left, pgid, sig);
    let until = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < until {
        reap_adopted();
        if members(pgid, token).is_empty() {
            return left.len();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    send(&members(pgid, token), pgid, Signal::SIGKILL);
    tokio::time::sleep(Duration::from_millis(50)).await;
    reap_adopted();
    left.len()
}

/// The fields of a [`CHILD_ENV`] value: manager, owner.
fn parse_token(v: &str) -> Option<(&str, &str)> {
    let mut it = v.splitn(3, '|');
    let manager = it.next()?;
    let _n = it.next()?;
    Some((manager, it.next()?))
}

/// Whether the restic-manager `<pid>.<start>` is still running.
fn manager_alive(manager: &str) -> bool {
    let Some((pid, start)) = manager.split_once('.') else {
        return false;
    };
    match (pid.parse::<i32>(), start.parse::<u64>()) {
        (Ok(pid), Ok(start)) => stat_of(pid).is_some_and(|s| s.start == start && !s.zombie),
        _ => false,
    }
}

/// Kills every process any child of ours left anywhere (the "second
/// signal: out now" path).
pub fn kill_all_descendants() {
    let me = manager_id();
    for (p, _, _) in carrying(candidates(), |v| {
        parse_token(v).is_some_and(|(m, _)| m == me)
    }) {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
}

/// Reaps zombies re-parented to us (we are their subreaper) that are not
/// children tokio waits for: those are in `registered`. The caller holds
/// the spawn lock, so no new child can be between spawn and registration.
pub fn reap_orphans(registered: &BTreeSet<u32>) {
    use nix::sys::wait::{WaitPidFlag, waitpid};
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    for (p, s) in candidates() {
        if s.ppid == me && s.zombie && !u32::try_from(p).is_ok_and(|u| registered.contains(&u)) {
            let _ = waitpid(Pid::from_raw(p), Some(WaitPidFlag::WNOHANG));
        }
    }
}

fn reap_adopted() {
    super::with_spawn_lock(reap_orphans);
}

/// A process an earlier, dead restic-manager started for a service and
/// that still runs.
#[derive(Debug, Clone)]
pub struct Leftover {
    pub pid: i32,
    /// Its command line, for the message.
    pub command: String,
    /// The pid of the restic-manager that started it.
    pub manager_pid: String,
}

/// Processes started for `owner` by a restic-manager process that has
/// ended. Call it while holding the service lock.
pub fn leftovers(owner: &str) -> Vec<Leftover> {
    let me = manager_id();
    carrying(all_processes(), |v| {
        parse_token(v).is_some_and(|(m, o)| o == owner && m != me && !manager_alive(m))
    })
    .into_iter()
    .map(|(pid, _, v)| Leftover {
        pid,
        command: std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                String::from_utf8_lossy(&c)
                    .trim_end_matches('\0')
                    .replace('\0', " ")
            })
            .unwrap_or_default(),
        manager_pid: parse_token(&v)
            .and_then(|(m, _)| m.split('.').next())
            .unwrap_or("?")
            .to_string(),
    })
    .collect()
}

/// Stops leftovers: SIGINT (restic then removes its repository lock),
/// up to `grace` to exit, then SIGKILL. Each is checked against its start
/// time, so a reused pid is never signalled.
pub async fn stop_leftovers(list: &[Leftover], grace: Duration) {
    let known: Vec<(i32, u64)> = list
        .iter()
        .filter_map(|l| Some((l.pid, stat_of(l.pid)?.start)))
        .collect();
    let alive = |known: &[(i32, u64)]| -> Vec<i32> {
        known
            .iter()
            .filter(|(p, st)| stat_of(*p).is_some_and(|s| s.start == *st && !s.zombie))
            .map(|(p, _)| *p)
            .collect()
    };
    send(&alive(&known), None, Signal::SIGINT);
    let until = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < until {
        reap_adopted();
        if alive(&known).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    send(&alive(&known), None, Signal::SIGKILL);
    tokio::time::sleep(Duration::from_millis(50)).await;
    reap_adopted();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descendant_that_left_its_session_is_found_among_ours() {
        // As the manager does at start-up, but without [`SUBREAPER`]: other
        // tests in this process must go on scanning all of /proc, since
        // their orphans may have gone to init before this line ran.
        #[cfg(target_os = "linux")]
        nix::sys::prctl::set_child_subreaper(true).expect("subreaper");
        // `sh` starts a daemon in a new session and exits: the daemon is
        // re-parented to us, its subreaper, not to init.
        let out = std::process::Command::new("sh")
            .args(["-c", "setsid sleep 30 >/dev/null 2>&1 & echo $!"])
            .output()
            .expect("sh");
        let daemon: i32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pid");
        let ours = walk_descendants().expect("no /proc children files");
        let found = ours.iter().any(|(p, _)| *p == daemon);
        let _ = kill(Pid::from_raw(daemon), Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(Pid::from_raw(daemon), None);
        assert!(found, "daemon {daemon} not among {ours:?}");
    }
}

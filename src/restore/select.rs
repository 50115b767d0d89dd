//! Which snapshot: `latest` of the right kind, or an id (any unique
//! prefix, as restic accepts); an unknown id lists the nearest ones.

use super::{DUMP_TAG, VOLUME_TAG};
use crate::model::Failure;
use crate::restic::output::Snapshot;

/// What kind of snapshot a restore needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// The service's file snapshots (paths and volume mountpoints), not its
    /// streamed dumps or volumes.
    Files,
    /// Snapshots tagged `dump:NAME`.
    Dump(String),
    /// Snapshots of a streamed volume, tagged `volume:NAME`, or file
    /// snapshots that hold the volume's mountpoint (`…/NAME/_data`).
    Volume(String),
}

/// The dump a snapshot holds (`dump:NAME` tag), if any.
pub fn dump_name(s: &Snapshot) -> Option<&str> {
    s.tags.iter().find_map(|t| t.strip_prefix(DUMP_TAG))
}

/// The streamed volume a snapshot holds (`volume:NAME` tag), if any.
pub fn volume_name(s: &Snapshot) -> Option<&str> {
    s.tags.iter().find_map(|t| t.strip_prefix(VOLUME_TAG))
}

/// The one file a dump snapshot holds (`/NAME` for `--stdin-filename
/// NAME`).
pub fn dump_file(s: &Snapshot) -> Option<&str> {
    match s.paths.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    }
}

/// Whether `s` is a snapshot of kind `want`.
pub fn matches(s: &Snapshot, want: &Want) -> bool {
    match want {
        Want::Files => dump_name(s).is_none() && volume_name(s).is_none(),
        Want::Dump(n) => dump_name(s) == Some(n.as_str()),
        Want::Volume(n) => match volume_name(s) {
            Some(v) => v == n,
            None => {
                dump_name(s).is_none()
                    && crate::sources::docker::volume_path_in_snapshot(&s.paths, n).is_some()
            }
        },
    }
}

fn describe(want: &Want) -> String {
    match want {
        Want::Files => "file snapshot".to_string(),
        Want::Dump(n) => format!("snapshot of dump `{n}`"),
        Want::Volume(n) => format!("snapshot of volume `{n}`"),
    }
}

/// Orders snapshots newest first (restic lists them oldest first; times
/// are RFC 3339 with a varying number of fraction digits, so compare them
/// parsed).
pub fn newest_first(list: &[Snapshot]) -> Vec<&Snapshot> {
    let mut v: Vec<(usize, &Snapshot)> = list.iter().enumerate().collect();
    let key = |s: &Snapshot| chrono::DateTime::parse_from_rfc3339(&s.time).ok();
    v.sort_by(|(ia, a), (ib, b)| match (key(a), key(b)) {
        (Some(x), Some(y)) => y.cmp(&x).then(ib.cmp(ia)),
        _ => ib.cmp(ia),
    });
    v.into_iter().map(|(_, s)| s).collect()
}

/// Up to `n` ids nearest to `given`: those sharing the longest prefix
/// first, then the smallest edit distance on the short id.
pub fn nearest<'a>(given: &str, list: &'a [Snapshot], n: usize) -> Vec<&'a Snapshot> {
    let given = given.to_ascii_lowercase();
    let common = |id: &str| {
        id.chars()
            .zip(given.chars())
            .take_while(|(a, b)| a == b)
            .count()
    };
    let mut scored: Vec<(std::cmp::Reverse<usize>, usize, &Snapshot)> = list
        .iter()
        .map(|s| {
            let short = &s.id[..s.id.len().min(given.len().max(8))];
            (
                std::cmp::Reverse(common(&s.id)),
                strsim::damerau_levenshtein(&given, short),
                s,
            )
        })
        .collect();
    scored.sort_by_key(|x| (x.0, x.1));
    scored.into_iter().take(n).map(|(_, _, s)| s).collect()
}

/// `  1a2b3c4d  2026-01-02 03:04:05  host  tags`, for error messages.
pub fn line(s: &Snapshot) -> String {
    let mut l = format!("{}  {}  {}", s.short(), time(s), s.hostname);
    if !s.tags.is_empty() {
        l.push_str("  ");
        l.push_str(&s.tags.join(","));
    }
    l
}

/// `2026-01-02 03:04:05` (UTC as restic stores it is shown in local time).
pub fn time(s: &Snapshot) -> String {
    chrono::DateTime::parse_from_rfc3339(&s.time).map_or_else(
        |_| s.time.get(..19).unwrap_or(&s.time).replace('T', " "),
        |t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        },
    )
}

/// Finds the snapshot `given` (`latest`, a full id or a unique prefix)
/// among `list` (one service's snapshots on one destination); `latest`
/// means the newest of kind `want`, an id must be of that kind too.
pub fn resolve<'a>(
    list: &'a [Snapshot],
    given: &str,
    want: &Want,
    where_: &str,
) -> Result<&'a Snapshot, Failure> {
    let given = given.trim();
    if given.eq_ignore_ascii_case("latest") {
        return newest_first(list)
            .into_iter()
            .find(|s| matches(s, want))
            .ok_or_else(|| {
                Failure::usage(format!(
                    "there is no {} {where_}{}",
                    describe(want),
                    available(list)
                ))
            });
    }
    let lower = given.to_ascii_lowercase();
    let found: Vec<&Snapshot> = if lower.is_empty() {
        Vec::new()
    } else {
        list.iter().filter(|s| s.id.starts_with(&lower)).collect()
    };
    match found.as_slice() {
        [one] if matches(one, want) || *want == Want::Files => Ok(one),
        [one] => Err(Failure::usage(format!(
            "snapshot `{}` {where_} is not a {} (its tags: {}); pick one with `--snapshot`, e.g. `latest`",
            one.short(),
            describe(want),
            if one.tags.is_empty() {
                "none".to_string()
            } else {
                one.tags.join(",")
            }
        ))),
        [] => {
            let near = nearest(&lower, list, 3);
            let mut msg = format!("no snapshot `{given}` {where_}");
            if near.is_empty() {
                msg.push_str("; it has no snapshots");
            } else {
                msg.push_str("; the nearest are:");
                for s in near {
                    msg.push_str("\n  ");
                    msg.push_str(&line(s));
                }
            }
            Err(Failure::usage(msg))
        }
        many => {
            let mut msg = format!(
                "snapshot id `{given}` is ambiguous {where_}; give more characters of one of:"
            );
            for s in many {
                msg.push_str(&format!("\n  {}  {}", &s.id[..s.id.len().min(16)], time(s)));
            }
            Err(Failure::usage(msg))
        }
    }
}

/// `; it has: …` listing the snapshots there are (newest first, at most 10).
pub fn available(list: &[Snapshot]) -> String {
    if list.is_empty() {
        return "; it has no snapshots yet (run `restic-manager run` first)".to_string();
    }
    let mut s = String::from("; snapshots there (newest first):");
    for snap in newest_first(list).into_iter().take(10) {
        s.push_str("\n  ");
        s.push_str(&line(snap));
    }
    if list.len() > 10 {
        s.push_str(&format!("\n  … and {} older", list.len() - 10));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, time: &str, tags: &[&str]) -> Snapshot {
        Snapshot {
            id: id.to_string(),
            short_id: Some(id[..8].to_string()),
            time: time.to_string(),
            hostname: "h".to_string(),
            paths: vec!["/data".to_string()],
            tags: tags.iter().map(ToString::to_string).collect(),
            original: None,
        }
    }

    fn list() -> Vec<Snapshot> {
        vec![
            snap(
                "aaaa1111ffff",
                "2026-01-01T10:00:00.5+00:00",
                &["service:x"],
            ),
            snap(
                "aaaa2222ffff",
                "2026-01-02T10:00:00Z",
                &["service:x", "dump:db"],
            ),
            snap(
                "bbbb3333ffff",
                "2026-01-01T12:00:00.123456789Z",
                &["service:x"],
            ),
        ]
    }

    #[test]
    fn latest_is_the_newest_of_the_wanted_kind() {
        let l = list();
        let pick = |w: &Want| resolve(&l, "latest", w, "here").map(|s| s.id.clone());
        assert_eq!(pick(&Want::Files).ok().as_deref(), Some("bbbb3333ffff"));
        assert_eq!(
            pick(&Want::Dump("db".into())).ok().as_deref(),
            Some("aaaa2222ffff")
        );
        let e = pick(&Want::Dump("other".into())).err().map(|e| e.message);
        assert!(
            e.as_deref()
                .is_some_and(|m| m.starts_with("there is no snapshot of dump `other` here")),
            "{e:?}"
        );
    }

    #[test]
    fn a_volume_is_in_its_stream_snapshots_or_file_snapshots_of_its_mountpoint() {
        let mut direct = snap("cccc0000ffff", "2026-01-03T00:00:00Z", &["service:x"]);
        direct.paths = vec!["/var/lib/docker/volumes/db/_data".into()];
        let stream = snap(
            "dddd0000ffff",
            "2026-01-02T00:00:00Z",
            &["service:x", "volume:db"],
        );
        let other = snap(
            "eeee0000ffff",
            "2026-01-04T00:00:00Z",
            &["service:x", "volume:web"],
        );
        let mut l = list();
        l.extend([direct, stream, other]);
        let want = Want::Volume("db".into());
        let ids: Vec<&str> = newest_first(&l)
            .into_iter()
            .filter(|s| matches(s, &want))
            .map(|s| s.id.as_str())
            .collect();
        assert_eq!(ids, ["cccc0000ffff", "dddd0000ffff"]);
    }

    #[test]
    fn ids_by_prefix_with_nearest_and_ambiguity() {
        let l = list();
        let r = |g: &str| resolve(&l, g, &Want::Files, "on `local`");
        assert_eq!(r("bbbb").ok().map(|s| s.id.as_str()), Some("bbbb3333ffff"));
        assert_eq!(
            r("BBBB3333").ok().map(|s| s.id.as_str()),
            Some("bbbb3333ffff")
        );
        let amb = r("aaaa").err().map(|e| e.message).unwrap_or_default();
        assert!(amb.contains("is ambiguous"), "{amb}");
        let unknown = r("aaaa1112").err().unwrap_or_else(|| Failure::usage(""));
        assert!(unknown.usage);
        assert!(
            unknown
                .message
                .starts_with("no snapshot `aaaa1112` on `local`; the nearest are:\n  aaaa1111"),
            "{}",
            unknown.message
        );
        let e = resolve(&l, "aaaa2222", &Want::Dump("other".into()), "here")
            .err()
            .map(|e| e.message)
            .unwrap_or_default();
        assert!(e.contains("is not a snapshot of dump `other`"), "{e}");
    }

    #[test]
    fn nearest_prefers_a_common_prefix_then_edit_distance() {
        let l = list();
        let n: Vec<&str> = nearest("bbbb3334", &l, 2)
            .iter()
            .map(|s| s.short())
            .collect();
        assert_eq!(n[0], "bbbb3333");
        let n: Vec<&str> = nearest("xaaa1111", &l, 1)
            .iter()
            .map(|s| s.short())
            .collect();
        assert_eq!(n, ["aaaa1111"]);
    }
}

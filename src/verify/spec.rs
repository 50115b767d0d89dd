//! `--read-data-subset` values and the scheduled rotation through them.

/// Checks a `--read-data-subset` value the way restic 0.14+ reads it:
/// `n/N` (part n of N, 1 ≤ n ≤ N), `x%` or `x.y%` (a random share, more
/// than 0 and at most 100) or a size with an optional unit `k`, `m`, `g`
/// or `t` (random packs up to that size). Returns the value restic gets.
pub fn parse_subset(spec: &str) -> Result<String, String> {
    let s = spec.trim();
    let bad = |why: &str| {
        Err(format!(
            "`--read-data-subset {spec}`: {why}; use `n/N` (e.g. `3/10`, part 3 of 10), a share such as `5%` or `2.5%`, or a size such as `500M` or `2G`"
        ))
    };
    if let Some((n, t)) = s.split_once('/') {
        return match (n.parse::<u32>(), t.parse::<u32>()) {
            (Ok(n), Ok(t)) if n >= 1 && t >= 1 && n <= t => Ok(format!("{n}/{t}")),
            (Ok(_), Ok(_)) => bad("n and N must be at least 1 and n at most N"),
            _ => bad("n and N must be whole numbers"),
        };
    }
    if let Some(p) = s.strip_suffix('%') {
        return match p.parse::<f64>() {
            Ok(v) if v > 0.0 && v <= 100.0 && !p.starts_with('+') => Ok(s.to_string()),
            Ok(_) => bad("the share must be more than 0% and at most 100%"),
            Err(_) => bad("the share must be a number"),
        };
    }
    let digits = s.trim_end_matches(|c: char| "kKmMgGtT".contains(c));
    let unit_len = s.len() - digits.len();
    if !digits.is_empty()
        && unit_len <= 1
        && digits.bytes().all(|b| b.is_ascii_digit())
        && digits.bytes().any(|b| b != b'0')
    {
        return Ok(s.to_string());
    }
    bad("not a part, a share or a size")
}

/// The subset a scheduled verify reads next: part `n+1` of `rotation`
/// after the last recorded part `n/rotation`, wrapping to 1; part 1 when
/// there is none or the rotation changed since.
pub fn next_rotation(last: Option<&str>, rotation: u32) -> String {
    let rotation = rotation.max(1);
    let next = last
        .and_then(|l| l.split_once('/'))
        .and_then(|(n, t)| Some((n.parse::<u32>().ok()?, t.parse::<u32>().ok()?)))
        .filter(|(n, t)| *t == rotation && *n >= 1 && *n <= *t)
        .map_or(1, |(n, _)| n % rotation + 1);
    format!("{next}/{rotation}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_values_restic_accepts() {
        for (v, want) in [
            ("3/10", Some("3/10")),
            (" 1/1 ", Some("1/1")),
            ("10/10", Some("10/10")),
            ("0/10", None),
            ("11/10", None),
            ("a/b", None),
            ("5%", Some("5%")),
            ("2.5%", Some("2.5%")),
            ("100%", Some("100%")),
            ("0%", None),
            ("150%", None),
            ("x%", None),
            ("500M", Some("500M")),
            ("2g", Some("2g")),
            ("1048576", Some("1048576")),
            ("0", None),
            ("5MB", None),
            ("M", None),
            ("", None),
        ] {
            assert_eq!(parse_subset(v).ok().as_deref(), want, "{v:?}");
        }
        let e = parse_subset("0/10").err().unwrap_or_default();
        assert!(e.contains("at least 1") && e.contains("`3/10`"), "{e}");
    }

    #[test]
    fn rotation_walks_through_every_part_and_wraps() {
        assert_eq!(next_rotation(None, 10), "1/10");
        assert_eq!(next_rotation(Some("1/10"), 10), "2/10");
        assert_eq!(next_rotation(Some("9/10"), 10), "10/10");
        assert_eq!(next_rotation(Some("10/10"), 10), "1/10");
        // The rotation changed: start again.
        assert_eq!(next_rotation(Some("4/10"), 7), "1/7");
        assert_eq!(next_rotation(Some("garbage"), 3), "1/3");
        assert_eq!(next_rotation(Some("1/1"), 1), "1/1");
    }
}

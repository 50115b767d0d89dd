//! Age limits written by users: `max_age = "26h"`, `verify_max_age = "8d"`.
//!
//! The syntax is a number with a unit, optionally several in a row
//! (`1d12h`): `s` seconds, `m` minutes, `h` hours, `d` days, `w` weeks.
//! `"off"` turns the check off. restic's own `--keep-within` syntax
//! (`m` = months) is a different thing and is not accepted here.

use std::time::Duration;

use serde::Serialize;

use super::ValueError;

/// The longest age limit: 10 years.
pub const MAX_AGE_SECONDS: u64 = 3650 * 86_400;

/// A limit on how old something may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeLimit {
    /// Never too old (the check is off).
    Off,
    /// Too old once older than this.
    After(Duration),
}

impl AgeLimit {
    /// The limit as a duration, `None` when off.
    pub fn duration(self) -> Option<Duration> {
        match self {
            AgeLimit::Off => None,
            AgeLimit::After(d) => Some(d),
        }
    }
}

impl std::fmt::Display for AgeLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgeLimit::Off => f.write_str("off"),
            AgeLimit::After(d) => f.write_str(&format_duration(*d)),
        }
    }
}

/// Parses `26h`, `3d`, `1d12h`, `90m`, `1w`, `45s` or `off`.
pub fn parse_age_limit(text: &str) -> Result<AgeLimit, ValueError> {
    let t = text;
    if t.trim() != t {
        return Err(ValueError::DurationSpaces(text.to_string()));
    }
    if t.eq_ignore_ascii_case("off") {
        return Ok(AgeLimit::Off);
    }
    let bad = || ValueError::NotADuration(text.to_string());
    let mut total: u64 = 0;
    let mut num = String::new();
    let mut any = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        any = true;
    }
    if !any || !num.is_empty() {
        return Err(bad());
    }
    if total > MAX_AGE_SECONDS {
        return Err(ValueError::DurationTooLong(text.to_string()));
    }
    if total == 0 {
        return Err(ValueError::DurationZero(text.to_string()));
    }
    Ok(AgeLimit::After(Duration::from_secs(total)))
}

/// `1d12h`, `26h`, `45m`, `10s`: the largest units that divide evenly,
/// at most two of them.
pub fn format_duration(d: Duration) -> String {
    let mut s = d.as_secs();
    if s == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut parts = 0;
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if s >= len && parts < 2 {
            // Keep hours below two days as hours (`26h` reads better than `1d2h`).
            if unit == "d" && s < 2 * 86_400 && !s.is_multiple_of(86_400) {
                continue;
            }
            out.push_str(&format!("{}{unit}", s / len));
            s %= len;
            parts += 1;
        } else if parts > 0 {
            parts = 2;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_users_write() {
        for (text, secs) in [
            ("26h", Some(26 * 3600)),
            ("3d", Some(3 * 86_400)),
            ("1d12h", Some(36 * 3600)),
            ("90m", Some(5400)),
            ("1w", Some(604_800)),
            ("1s", Some(1)),
        ] {
            assert_eq!(
                parse_age_limit(text).map(AgeLimit::duration),
                Ok(secs.map(Duration::from_secs)),
                "{text}"
            );
        }
        assert_eq!(parse_age_limit("off"), Ok(AgeLimit::Off));
        for bad in [
            "", "26", "h", "3x", "1.5d", "0h", "-1d", "1d 2h", " 1d", "8d ", "3651d",
        ] {
            assert!(parse_age_limit(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_read_back() {
        for (secs, text) in [
            (26 * 3600, "26h"),
            (3 * 86_400, "3d"),
            (8 * 86_400, "8d"),
            (36 * 3600, "36h"),
            (50 * 3600, "2d2h"),
            (90 * 60, "1h30m"),
            (45, "45s"),
            (3 * 86_400 + 61, "3d"),
        ] {
            assert_eq!(format_duration(Duration::from_secs(secs)), text);
        }
    }
}

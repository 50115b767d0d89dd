//! A 5-field cron expression taken apart into the sets of values each field
//! matches, so the systemd, launchd and Windows backends can each express it
//! in their own calendar language.
//!
//! It lives in `config`, below `schedule`, because the config checks use it
//! too (an expression that never fires). The config loader has already
//! accepted the expression (croner); this parser only needs to understand the common subset (`*`, numbers, names,
//! lists, ranges, steps). Extensions such as `L`, `W` or `#` are reported as
//! "cannot be expressed" by the backends that need the sets.

use std::collections::BTreeSet;

/// One field: every value (`*` or a step over the whole range) or a set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field as written.
    pub text: String,
    /// The values it matches, within the field's range.
    pub values: BTreeSet<u32>,
    /// Matches every value of its range.
    pub all: bool,
    /// Written starting with `*` (Vixie cron: day-of-month and day-of-week
    /// are OR-ed only when neither starts with `*`).
    pub star: bool,
}

/// A parsed 5-field expression.
#[derive(Debug, Clone)]
pub struct CronExpr {
    pub text: String,
    pub minute: Field,
    pub hour: Field,
    pub dom: Field,
    pub month: Field,
    /// Day of week, 0 = Sunday … 6 = Saturday (7 folded into 0).
    pub dow: Field,
}

/// Why [`CronExpr::parse`] did not understand an expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "cron expression `{expr}` has {count} fields; use 5 (minute hour day-of-month month day-of-week)"
    )]
    FieldCount { expr: String, count: usize },
    #[error("cron expression `{expr}`: {field} field `{text}`: {problem}")]
    Field {
        expr: String,
        /// `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
        field: &'static str,
        /// The field as written.
        text: String,
        problem: FieldProblem,
    },
}

/// What is wrong inside one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldProblem {
    #[error("`{0}` is not a number or a name")]
    NotAValue(String),
    #[error("step `{0}` is not a positive number")]
    BadStep(String),
    #[error("`{item}` is outside {lo}-{hi} or runs backwards")]
    OutOfRange { item: String, lo: u32, hi: u32 },
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl CronExpr {
    /// Parses `expr`; the error names the field that is not understood.
    pub fn parse(expr: &str) -> Result<CronExpr, CronError> {
        let parts: Vec<&str> = expr.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(CronError::FieldCount {
                expr: expr.to_string(),
                count: parts.len(),
            });
        }
        let f = |i: usize, field: &'static str, lo: u32, hi: u32, names: &[&str], base: u32| {
            parse_field(parts[i], lo, hi, names, base).map_err(|problem| CronError::Field {
                expr: expr.to_string(),
                field,
                text: parts[i].to_string(),
                problem,
            })
        };
        let mut dow = f(4, "day-of-week", 0, 7, &DAYS, 0)?;
        if dow.values.remove(&7) {
            dow.values.insert(0);
        }
        dow.all = dow.values.len() == 7;
        Ok(CronExpr {
            text: expr.to_string(),
            minute: f(0, "minute", 0, 59, &[], 0)?,
            hour: f(1, "hour", 0, 23, &[], 0)?,
            dom: f(2, "day-of-month", 1, 31, &[], 0)?,
            month: f(3, "month", 1, 12, &MONTHS, 1)?,
            dow,
        })
    }

    /// Vixie cron semantics: when both day fields are restricted and neither
    /// starts with `*`, a day matches if *either* matches.
    pub fn days_or(&self) -> bool {
        !self.dom.all && !self.dow.all && !self.dom.star && !self.dow.star
    }
}

fn value(s: &str, names: &[&str], base: u32) -> Result<u32, FieldProblem> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    let lower = s.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .and_then(|i| u32::try_from(i).ok())
        .map(|i| i + base)
        .ok_or_else(|| FieldProblem::NotAValue(s.to_string()))
}

fn parse_field(
    text: &str,
    lo: u32,
    hi: u32,
    names: &[&str],
    base: u32,
) -> Result<Field, FieldProblem> {
    let mut values = BTreeSet::new();
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| FieldProblem::BadStep(s.to_string()))?;
                (r, step)
            }
            None => (item, 1),
        };
        let (a, b) = if range == "*" || range == "?" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, base)?, value(b, names, base)?)
        } else {
            let a = value(range, names, base)?;
            // `a/n` means "from a to the end, every n".
            (a, if step > 1 { hi } else { a })
        };
        if a < lo || b > hi || a > b {
            return Err(FieldProblem::OutOfRange {
                item: item.to_string(),
                lo,
                hi,
            });
        }
        values.extend((a..=b).step_by(step as usize));
    }
    let all = (lo..=hi).all(|v| values.contains(&v));
    Ok(Field {
        text: text.to_string(),
        values,
        all,
        star: text.starts_with('*') || text.starts_with('?'),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_sets() {
        let e = CronExpr::parse("*/20 1-3,5 * jan-mar MON-fri").unwrap();
        assert_eq!(e.minute.values, BTreeSet::from([0, 20, 40]));
        assert_eq!(e.hour.values, BTreeSet::from([1, 2, 3, 5]));
        assert!(e.dom.all && e.dom.star);
        assert_eq!(e.month.values, BTreeSet::from([1, 2, 3]));
        assert_eq!(e.dow.values, BTreeSet::from([1, 2, 3, 4, 5]));
        let e = CronExpr::parse("0 0 * * 7").unwrap();
        assert_eq!(e.dow.values, BTreeSet::from([0]));
        let e = CronExpr::parse("0 0 * * 0-7").unwrap();
        assert!(e.dow.all);
        assert!(CronExpr::parse("0 0 L * *").is_err());
        assert!(CronExpr::parse("0 0 5-1 * *").is_err());
    }

    #[test]
    fn errors_name_the_field() {
        for (expr, want) in [
            (
                "0 0 * *",
                "cron expression `0 0 * *` has 4 fields; use 5 (minute hour day-of-month month day-of-week)",
            ),
            (
                "0 0 L * *",
                "cron expression `0 0 L * *`: day-of-month field `L`: `L` is not a number or a name",
            ),
            (
                "*/0 0 * * *",
                "cron expression `*/0 0 * * *`: minute field `*/0`: step `0` is not a positive number",
            ),
            (
                "0 0 5-1 * *",
                "cron expression `0 0 5-1 * *`: day-of-month field `5-1`: `5-1` is outside 1-31 or runs backwards",
            ),
        ] {
            assert_eq!(
                CronExpr::parse(expr).map(|_| ()).map_err(|e| e.to_string()),
                Err(want.to_string()),
                "{expr}"
            );
        }
    }
}

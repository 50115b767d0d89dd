//! Everything a client sends is checked here before it gets near restic or
//! the file system: snapshot ids, paths inside a snapshot, names of new
//! restore folders. Anything odd is refused rather than repaired.

/// Accepts `latest` or 8–64 lower- or upper-case hex digits.
pub fn snapshot_id(id: &str) -> Result<String, String> {
    if id == "latest" {
        return Ok(id.to_string());
    }
    if (8..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(id.to_ascii_lowercase());
    }
    Err(format!(
        "`{}` is not a snapshot id: use `latest` or 8 to 64 hex digits",
        printable(id)
    ))
}

/// Shows a user-supplied value safely in a message.
fn printable(s: &str) -> String {
    s.chars()
        .take(80)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Checks a path inside a snapshot (already percent-decoded once by the
/// router) and returns it normalised: absolute, no trailing slash.
/// Refused: `..` and `.` components, NUL and other control characters,
/// backslashes, and percent-encoded dots, slashes or NULs that are still
/// encoded after decoding (double encoding is an attack, not a file name).
pub fn snapshot_path(raw: &str) -> Result<String, String> {
    let bad = |why: &str| Err(format!("path `{}` refused: {why}", printable(raw)));
    if raw.is_empty() || raw == "/" {
        return Ok("/".into());
    }
    if raw.chars().any(char::is_control) {
        return bad("it contains a control character");
    }
    if raw.contains('\\') {
        return bad("it contains a backslash");
    }
    let lower = raw.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00", "%25"]
        .iter()
        .any(|e| lower.contains(e))
    {
        return bad("it contains a percent-encoded character after decoding");
    }
    if !raw.starts_with('/') {
        return bad("it must be absolute (start with `/`)");
    }
    let parts: Vec<&str> = raw.split('/').filter(|p| !p.is_empty()).collect();
    if parts.iter().any(|p| *p == ".." || *p == ".") {
        return bad("`.` and `..` are not allowed");
    }
    if parts.is_empty() {
        return Ok("/".into());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// A path `restic restore --include` takes literally: no glob characters.
pub fn literal_pattern(path: &str) -> Result<(), String> {
    if path.contains(['*', '?', '[', ']']) {
        return Err(format!(
            "`{}` contains a glob character (`*`, `?`, `[`, `]`); restore its folder instead",
            printable(path)
        ));
    }
    Ok(())
}

/// The name of a new folder under the restore directory: one component of
/// letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn folder_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "`{}` is not a folder name: use letters, digits, `-`, `_` and `.` (not first), at most 100",
            printable(name)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_ids() {
        for ok in ["latest", "0123abcd", &"a".repeat(64), "DEADBEEF"] {
            assert!(snapshot_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234567",
            "xyz12345",
            &"a".repeat(65),
            "../../etc",
            "latest;",
            "-r",
        ] {
            assert!(snapshot_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn snapshot_paths() {
        let cases: &[(&str, Option<&str>)] = &[
            ("", Some("/")),
            ("/", Some("/")),
            ("/srv/data/", Some("/srv/data")),
            ("//srv//data", Some("/srv/data")),
            ("/srv/a file (1).txt", Some("/srv/a file (1).txt")),
            ("/srv/../etc/passwd", None),
            ("/srv/./x", None),
            ("..", None),
            ("srv/data", None),
            ("/srv/%2e%2e/etc", None),
            ("/srv/%2E%2E%2Fetc", None),
            ("/srv/%252e%252e", None),
            ("/srv/a\0b", None),
            ("/srv\\..\\etc", None),
            ("/srv/\n", None),
        ];
        for (input, want) in cases {
            assert_eq!(snapshot_path(input).ok().as_deref(), *want, "{input:?}");
        }
    }

    #[test]
    fn folder_names() {
        assert!(folder_name("wiki-2024-01-01_1").is_ok());
        for bad in [
            "",
            ".",
            "..",
            ".hidden",
            "a/b",
            "a b",
            &"x".repeat(101),
            "../x",
        ] {
            assert!(folder_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn glob_characters_are_not_restored_literally() {
        assert!(literal_pattern("/srv/a.txt").is_ok());
        assert!(literal_pattern("/srv/*").is_err());
    }
}

//! The database password of a preset dump that runs inside a container,
//! taken from the container's own environment.
//!
//! The official MariaDB/MySQL and PostgreSQL images are configured with
//! `MARIADB_ROOT_PASSWORD` / `MYSQL_ROOT_PASSWORD`, `MARIADB_PASSWORD` /
//! `MYSQL_PASSWORD` (for `MARIADB_USER` / `MYSQL_USER`) and
//! `POSTGRES_PASSWORD` (for `POSTGRES_USER`). The dump tools do not read
//! those, so a `mariadb-dump --user=root` run through `docker exec` fails
//! with "Access denied" although the container knows the password. When a
//! preset dump names a `container` and has no `password_file`, the matching
//! value is handed to the exec as `MYSQL_PWD` / `PGPASSWORD`: in the exec's
//! environment, never its command line. This is what the original tool's
//! `strategy = "appwrite"` relied on (`-p$MYSQL_ROOT_PASSWORD`).

use bollard::Docker;

/// Which password variable to fill, for which database user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPassword {
    /// `MYSQL_PWD` or `PGPASSWORD`.
    pub var: &'static str,
    /// The user the dump connects as (`None`: the tool's default).
    pub user: Option<String>,
}

impl ContainerPassword {
    fn postgres(&self) -> bool {
        self.var == "PGPASSWORD"
    }

    /// The password for this user among the container's `KEY=VALUE`
    /// variables; `None` when the container sets the variable itself
    /// (the exec inherits it) or has nothing for this user.
    pub fn pick(&self, env: &[String]) -> Option<String> {
        let get = |key: &str| {
            env.iter()
                .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
                .filter(|v| !v.is_empty())
        };
        if get(self.var).is_some() {
            return None;
        }
        let user = self.user.as_deref();
        let found = if self.postgres() {
            let owner = get("POSTGRES_USER").unwrap_or("postgres");
            if user.is_none_or(|u| u == owner) {
                get("POSTGRES_PASSWORD")
            } else {
                None
            }
        } else if user.is_none_or(|u| u == "root") {
            get("MARIADB_ROOT_PASSWORD").or_else(|| get("MYSQL_ROOT_PASSWORD"))
        } else if get("MARIADB_USER") == user {
            get("MARIADB_PASSWORD")
        } else if get("MYSQL_USER") == user {
            get("MYSQL_PASSWORD")
        } else {
            None
        };
        found.map(str::to_string)
    }

    /// `VAR=password` for the exec, read from the container's
    /// configuration. Any failure gives `None`: the exec itself then
    /// reports a missing container, and a wrong password is the database's
    /// own "access denied".
    pub async fn lookup(&self, api: &Docker, container: &str) -> Option<String> {
        let info = api.inspect_container(container, None).await.ok()?;
        let env = info.config.and_then(|c| c.env).unwrap_or_default();
        self.pick(&env).map(|p| format!("{}={p}", self.var))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[&str]) -> Vec<String> {
        vars.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_password_matching_the_user_is_picked() {
        let maria = |user: Option<&str>| ContainerPassword {
            var: "MYSQL_PWD",
            user: user.map(ToString::to_string),
        };
        let pg = |user: Option<&str>| ContainerPassword {
            var: "PGPASSWORD",
            user: user.map(ToString::to_string),
        };
        let appwrite = env(&[
            "MYSQL_ROOT_PASSWORD=rootpw",
            "MYSQL_USER=user",
            "MYSQL_PASSWORD=userpw",
        ]);
        for (who, vars, want) in [
            (maria(Some("root")), appwrite.clone(), Some("rootpw")),
            (maria(None), appwrite.clone(), Some("rootpw")),
            (maria(Some("user")), appwrite.clone(), Some("userpw")),
            (maria(Some("other")), appwrite.clone(), None),
            (
                maria(Some("root")),
                env(&["MARIADB_ROOT_PASSWORD=a", "MYSQL_ROOT_PASSWORD=b"]),
                Some("a"),
            ),
            (
                maria(Some("app")),
                env(&["MARIADB_USER=app", "MARIADB_PASSWORD=p"]),
                Some("p"),
            ),
            // The container sets the client's variable itself: inherited.
            (
                maria(Some("root")),
                env(&["MYSQL_PWD=x", "MYSQL_ROOT_PASSWORD=y"]),
                None,
            ),
            (maria(Some("root")), env(&["MYSQL_ROOT_PASSWORD="]), None),
            (
                pg(Some("postgres")),
                env(&["POSTGRES_PASSWORD=pg"]),
                Some("pg"),
            ),
            (pg(None), env(&["POSTGRES_PASSWORD=pg"]), Some("pg")),
            (
                pg(Some("immich")),
                env(&["POSTGRES_USER=immich", "POSTGRES_PASSWORD=i"]),
                Some("i"),
            ),
            (
                pg(Some("postgres")),
                env(&["POSTGRES_USER=immich", "POSTGRES_PASSWORD=i"]),
                None,
            ),
            (pg(Some("postgres")), env(&["PGPASSWORD=set"]), None),
        ] {
            assert_eq!(who.pick(&vars).as_deref(), want, "{who:?} {vars:?}");
        }
    }
}

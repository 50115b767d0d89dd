//! `restic SERVICE -- ARGS…`, `restic --list` and `env SERVICE`: restic
//! itself, pointed at a service's repository with the configuration's
//! password, credentials and options, for everything the tool does not do.
//!
//! `restic` replaces this process with restic (exec), so the terminal,
//! pipes, signals and the exit code are restic's own: `key add` can prompt,
//! `mount` can be stopped with Ctrl-C, `snapshots --json | jq` works.

use serde::Serialize;

use super::Context;
use crate::cli::{EnvArgs, ResticArgs};
use crate::config::{Config, PasswordSource, Service, did_you_mean};
use crate::error::Error;
use crate::model::Exit;
use crate::restic::{Repository, ResticCall};

/// The service and the destination a command works on.
fn pick<'a>(
    config: &'a Config,
    service: &str,
    destination: Option<&str>,
) -> Result<(&'a Service, String, bool), Error> {
    let svc = super::select(config, &[service.to_string()], false)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Usage(format!("unknown service `{service}`")))?;
    let targets: Vec<&str> = svc.targets.iter().map(String::as_str).collect();
    match destination {
        Some(d) if targets.contains(&d) => Ok((svc, d.to_string(), false)),
        Some(d) => {
            let mut msg = format!("service `{}` has no target `{d}`", svc.name);
            msg.push_str(&did_you_mean(d, &targets).unwrap_or_else(|| {
                format!("; its targets are {}", crate::config::load::list(&targets))
            }));
            Err(Error::Usage(msg))
        }
        None => targets
            .first()
            .map(|d| (svc, (*d).to_string(), true))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "service `{}` has no targets; add `targets = [\"DESTINATION\"]`",
                    svc.name
                ))
            }),
    }
}

/// The repository of `service` on `destination`, secrets not yet read.
fn repository(config: &Config, service: &str, destination: &str) -> Result<Repository, Error> {
    Repository::new(
        destination_of(config, destination)?,
        service,
        &config.settings.password,
    )
    .map_err(|e| Error::Other(e.to_string()))
}

fn destination_of<'c>(
    config: &'c Config,
    destination: &str,
) -> Result<&'c crate::config::Destination, Error> {
    config.destinations.get(destination).ok_or_else(|| {
        Error::Usage(format!(
            "destination `{destination}` is not defined in `{}`",
            config.file.display()
        ))
    })
}

/// `restic-manager restic …`.
pub async fn run(ctx: &Context, a: &ResticArgs) -> Result<Exit, Error> {
    let config = ctx.load_config()?;
    if a.list {
        return list(ctx, &config);
    }
    let service = a
        .service
        .as_deref()
        .ok_or_else(|| Error::Usage("name a service, or use `--list`".into()))?;
    let (svc, destination, defaulted) = pick(&config, service, a.destination.as_deref())?;
    let repo = Repository::open(
        destination_of(&config, &destination)?,
        &svc.name,
        &config.settings.password,
    )
    .map_err(|e| Error::Other(e.to_string()))?;
    let restic = ctx.restic(&config).await?;
    if defaulted && svc.targets.len() > 1 {
        ctx.printer.info(format!(
            "restic-manager: using destination `{destination}` (the first target of `{}`); choose another with --destination",
            svc.name
        ));
    } else if defaulted {
        ctx.printer.verbose(format!(
            "restic-manager: using destination `{destination}` (the only target of `{}`)",
            svc.name
        ));
    }
    ctx.printer.verbose(format!(
        "restic-manager: restic {} on {}",
        restic.version, repo.display
    ));
    let call = ResticCall::new(&restic, &repo, a.args.iter().cloned());
    let err = crate::process::exec_in_place(&call.spec);
    Err(Error::Other(format!(
        "{err}; check `restic_binary` or run `restic-manager setup-restic`"
    )))
}

/// A credential restic gets from a file.
#[derive(Debug, Serialize)]
struct CredentialFile {
    key: String,
    file: String,
}

/// One line of `restic --list`.
#[derive(Debug, Serialize)]
struct Resolved {
    service: String,
    destination: String,
    /// The location, credentials replaced by `***`.
    repository: String,
    /// `file` or `command`.
    password_source: &'static str,
    /// The password file's path, or the command that prints the password.
    password: String,
    /// `-o` options restic gets.
    options: Vec<String>,
    /// Environment variables set for restic (names only).
    environment: Vec<String>,
    /// Credentials read from files when restic runs: the configuration key
    /// and the file (the REST HTTP password goes into the location, the
    /// others into the environment).
    credential_files: Vec<CredentialFile>,
    /// Only with `--list`: whether this is the service's first target.
    default: bool,
}

fn list(ctx: &Context, config: &Config) -> Result<Exit, Error> {
    let mut rows = Vec::new();
    for svc in &config.services {
        for (i, d) in svc.targets.iter().enumerate() {
            let repo = repository(config, &svc.name, d)?;
            let (source, password) = match &repo.password {
                PasswordSource::File(f) => ("file", f.display().to_string()),
                PasswordSource::Command(c) => ("command", c.clone()),
            };
            let mut environment: Vec<String> = repo.env.iter().map(|(k, _)| k.clone()).collect();
            environment.extend(
                repo.secret_files
                    .iter()
                    .filter(|(var, _, _)| !var.starts_with('\0'))
                    .map(|(var, _, _)| var.clone()),
            );
            let credential_files = repo
                .secret_files
                .iter()
                .map(|(_, key, file)| CredentialFile {
                    key: key.clone(),
                    file: file.clone(),
                })
                .collect();
            rows.push(Resolved {
                service: svc.name.clone(),
                destination: d.clone(),
                repository: repo.display.clone(),
                password_source: source,
                password,
                options: repo.options.clone(),
                environment,
                credential_files,
                default: i == 0,
            });
        }
    }
    if ctx.printer.json {
        ctx.printer.json(&rows);
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        ctx.printer.line("no services with targets");
        return Ok(Exit::Ok);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.service.clone(),
                format!("{}{}", r.destination, if r.default { " *" } else { "" }),
                r.repository.clone(),
                format!("{} {}", r.password_source, r.password),
                if r.options.is_empty() && r.credential_files.is_empty() && r.environment.is_empty()
                {
                    "-".into()
                } else {
                    r.options
                        .iter()
                        .map(|o| format!("-o {o}"))
                        .chain(r.environment.iter().map(|e| format!("${e}")))
                        .chain(
                            r.credential_files
                                .iter()
                                .map(|c| format!("{}={}", c.key, c.file)),
                        )
                        .collect::<Vec<_>>()
                        .join(" ")
                },
            ]
        })
        .collect();
    ctx.printer.line(crate::output::table(
        &[
            "SERVICE",
            "DESTINATION",
            "REPOSITORY",
            "PASSWORD",
            "OPTIONS, ENVIRONMENT, CREDENTIALS",
        ],
        &table,
    ));
    ctx.printer
        .line("* the destination used when --destination is not given");
    Ok(Exit::Ok)
}

/// The variable a credential file is exported as.
fn rest_password_var(var: &str) -> &str {
    if var.starts_with('\0') {
        "RESTIC_REST_PASSWORD"
    } else {
        var
    }
}

/// `value` as one single-quoted shell word.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// Environment variables whose value looks like a secret: listed by name
/// only.
fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["PASSWORD", "SECRET", "TOKEN", "KEY", "CREDENTIAL"]
        .iter()
        .any(|w| n.contains(w))
}

/// The shell lines of `env`.
fn env_lines(config: &Config, service: &str, destination: &str) -> Result<Vec<String>, Error> {
    let repo = repository(config, service, destination)?;
    let dest = config.destinations.get(destination);
    let rest_user = dest
        .filter(|d| d.kind == "rest")
        .and_then(|d| d.raw.username.clone());
    let mut url = repo.url.clone();
    if url != repo.display && rest_user.is_none() {
        return Err(Error::Usage(format!(
            "the location of destination `{destination}` holds a password, which `env` would print; \
             put it in `password_file` (with `username`) instead, or use `restic-manager restic {service} -- …`"
        )));
    }
    let mut lines = vec![format!(
        "# restic-manager: service `{service}` on destination `{destination}`"
    )];
    lines.push(
        "unset RESTIC_REPOSITORY_FILE RESTIC_PASSWORD RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND"
            .into(),
    );
    if let Some(user) = &rest_user {
        // restic reads RESTIC_REST_USERNAME/PASSWORD only when the location
        // carries no credentials, so the user name moves out of it.
        if let Some(at) = url.find('@')
            && let Some(scheme) = url.find("://")
            && scheme < at
        {
            url = format!("{}{}", &url[..scheme + 3], &url[at + 1..]);
        }
        lines.push(format!("export RESTIC_REST_USERNAME={}", quote(user)));
    }
    lines.push(format!("export RESTIC_REPOSITORY={}", quote(&url)));
    match &repo.password {
        PasswordSource::File(f) => lines.push(format!(
            "export RESTIC_PASSWORD_FILE={}",
            quote(&f.to_string_lossy())
        )),
        PasswordSource::Command(c) => {
            lines.push(format!("export RESTIC_PASSWORD_COMMAND={}", quote(c)));
        }
    }
    for (var, _, file) in &repo.secret_files {
        let var = rest_password_var(var);
        lines.push(format!("export {var}=\"$(cat {})\"", quote(file)));
    }
    if rest_user.is_some() {
        lines.push(
            "# RESTIC_REST_USERNAME and RESTIC_REST_PASSWORD need restic 0.16.1 or newer".into(),
        );
    }
    for (k, v) in &repo.env {
        if looks_secret(k) {
            lines.push(format!(
                "# {k} is set for restic by the configuration's `env` table; not printed"
            ));
        } else {
            lines.push(format!("export {k}={}", quote(v)));
        }
    }
    if !repo.options.is_empty() {
        let opts: Vec<String> = repo
            .options
            .iter()
            .map(|o| format!("-o {}", quote(o)))
            .collect();
        lines.push(format!(
            "restic() {{ command restic {} \"$@\"; }}",
            opts.join(" ")
        ));
    }
    Ok(lines)
}

/// `restic-manager env SERVICE`.
pub fn env(ctx: &Context, a: &EnvArgs) -> Result<Exit, Error> {
    let config = ctx.load_config()?;
    let (svc, destination, defaulted) = pick(&config, &a.service, a.destination.as_deref())?;
    if defaulted && svc.targets.len() > 1 {
        ctx.printer.info(format!(
            "restic-manager: using destination `{destination}` (the first target of `{}`); choose another with --destination",
            svc.name
        ));
    }
    for l in env_lines(&config, &svc.name, &destination)? {
        println!("{l}");
    }
    Ok(Exit::Ok)
}

#[cfg(test)]
mod tests {
    use super::{looks_secret, quote};

    #[test]
    fn shell_words_survive_quotes() {
        assert_eq!(quote("plain"), "'plain'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$(rm -rf ~)"), "'$(rm -rf ~)'");
    }

    #[test]
    fn secret_looking_names_are_not_printed() {
        for n in [
            "AWS_SECRET_ACCESS_KEY",
            "GOOGLE_ACCESS_TOKEN",
            "RCLONE_CONFIG_PASS_PASSWORD",
        ] {
            assert!(looks_secret(n), "{n}");
        }
        for n in ["AWS_DEFAULT_REGION", "RCLONE_CONFIG", "TMPDIR"] {
            assert!(!looks_secret(n), "{n}");
        }
    }
}

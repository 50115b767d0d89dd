//! One file per subcommand. Each orders the work and prints; the library
//! does the work.

mod config_show;
mod list;
mod run;
mod schedule;
mod setup;
mod snapshots;
mod status;
mod validate;

use std::path::PathBuf;

use crate::cli::{Cli, Command, ConfigCommand, ScheduleCommand};
use crate::config::{self, Config, Env, Service, suggest};
use crate::error::Error;
use crate::output::Printer;
use crate::restic::Restic;

/// What every command gets: environment, printer, global flags.
pub struct Context {
    pub env: Env,
    pub printer: Printer,
    pub config_flag: Option<PathBuf>,
}

impl Context {
    /// Finds, loads and validates the configuration.
    pub fn load_config(&self) -> Result<Config, Error> {
        let (file, why) =
            config::discover(&self.env, self.config_flag.as_ref()).map_err(Error::ConfigMissing)?;
        self.printer
            .verbose(format!("using configuration `{}` ({why})", file.display()));
        Config::load(&file, &self.env).map_err(Error::Config)
    }

    /// Locates restic as configured.
    pub async fn restic(&self, config: &Config) -> Result<Restic, Error> {
        let state = &config.settings.state_directory;
        let r = Restic::locate_cached(
            config.settings.restic_binary.as_deref(),
            state.is_dir().then_some(state.as_path()),
        )
        .await?;
        self.printer.verbose(format!(
            "using restic {} at `{}` (from {})",
            r.version,
            r.path.display(),
            r.source
        ));
        Ok(r)
    }
}

/// Picks services by name (all when `names` is empty, enabled ones only when
/// `enabled_only`); an unknown name is a usage error with a suggestion.
pub fn select<'a>(
    config: &'a Config,
    names: &[String],
    enabled_only: bool,
) -> Result<Vec<&'a Service>, Error> {
    if names.is_empty() {
        return Ok(config
            .services
            .iter()
            .filter(|s| s.enabled || !enabled_only)
            .collect());
    }
    let all = config.service_names();
    names
        .iter()
        .map(|n| {
            config.service(n).ok_or_else(|| {
                let mut msg = format!("unknown service `{n}`");
                match suggest(n, &all) {
                    Some(s) => msg.push_str(&format!("; did you mean `{s}`?")),
                    None if all.is_empty() => {
                        msg.push_str("; the configuration defines no services")
                    }
                    None => msg.push_str(&format!("; services are {}", config::load::list(&all))),
                }
                Error::Usage(msg)
            })
        })
        .collect()
}

/// Runs the chosen command; returns the exit code.
pub async fn dispatch(cli: Cli) -> Result<i32, Error> {
    let g = cli.global;
    let ctx = Context {
        env: Env::from_process(),
        printer: Printer::new(g.json, g.quiet, g.verbose),
        config_flag: g.config,
    };
    match cli.command {
        Command::Validate => validate::run(&ctx),
        Command::List => list::run(&ctx),
        Command::Config(ConfigCommand::Show(f)) => config_show::run(&ctx, &f),
        Command::Setup(a) => setup::run(&ctx, &a).await,
        Command::Run(a) => run::run(&ctx, &a).await,
        Command::Snapshots(f) => snapshots::run(&ctx, &f).await,
        Command::Status(f) => status::run(&ctx, &f),
        Command::Schedule(ScheduleCommand::Show(a)) => {
            schedule::run(&ctx, schedule::Action::Show, &a).await
        }
        Command::Schedule(ScheduleCommand::Install(a)) => {
            schedule::run(&ctx, schedule::Action::Install, &a).await
        }
        Command::Schedule(ScheduleCommand::Remove(a)) => {
            schedule::run(&ctx, schedule::Action::Remove, &a).await
        }
    }
}

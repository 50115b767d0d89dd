//! One file per subcommand. Each orders the work and prints; the library
//! does the work.

mod completions;
mod config_show;
pub mod list;
mod man;
mod metrics;
mod notify;
mod restic_exec;
mod restic_version;
mod restore;
mod run;
mod schedule;
mod serve;
mod setup;
mod setup_restic;
mod snapshots;
mod status;
mod update_restic;
mod validate;
mod verify;

use std::path::PathBuf;

use crate::cli::{Cli, Command, ConfigCommand, ScheduleCommand};
use crate::config::Settings;
use crate::config::{self, Config, Env, Service, did_you_mean};
use crate::error::Error;
use crate::model::Exit;
use crate::output::Printer;
use crate::restic::{Lookup, Restic};

/// What every command gets: environment, printer, global flags.
pub struct Context {
    pub env: Env,
    pub printer: Printer,
    pub config_flag: Option<PathBuf>,
    /// Containers found by Docker label discovery (`[docker] discover`),
    /// asked once before the command runs.
    pub discovery: config::labels::Discovery,
}

impl Context {
    /// Finds, loads and validates the configuration.
    pub fn load_config(&self) -> Result<Config, Error> {
        self.load_config_announcing(true)
    }

    /// [`Context::load_config`]; `announce`: say on stderr that settings of
    /// the original tool were translated (commands that print the
    /// translations themselves do not).
    pub fn load_config_announcing(&self, announce: bool) -> Result<Config, Error> {
        let (file, why) = config::discover(&self.env, self.config_flag.as_ref())
            .map_err(|e| Error::ConfigMissing(e.to_string()))?;
        self.printer
            .verbose(format!("using configuration `{}` ({why})", file.display()));
        let c = Config::load_with(&file, &self.env, &self.discovery).map_err(Error::Config)?;
        if let Some(e) = &c.discovery.error {
            self.printer.info(format!("warning: {e}"));
        }
        if announce && !c.warnings.is_empty() {
            self.printer.info(format!(
                "warning: `{}` uses settings of the original restic-manager that were translated ({} warning{}); `restic-manager validate` shows today's form",
                file.display(),
                c.warnings.len(),
                if c.warnings.len() == 1 { "" } else { "s" }
            ));
        }
        Ok(c)
    }

    /// The configuration when there is one, for commands that also work
    /// without (`setup-restic`, `restic-version`): a file named by
    /// `--config` or `$RESTIC_MANAGER_CONFIG` must exist, the default
    /// locations may be empty; a file that exists must be valid.
    pub fn optional_config(&self) -> Result<Option<Config>, Error> {
        let named = self.config_flag.is_some() || self.env.config_override.is_some();
        let any = self
            .env
            .config_candidates(self.config_flag.as_ref())
            .iter()
            .any(|(f, _)| f.exists());
        if !named && !any {
            self.printer
                .verbose("no configuration file found; using the defaults");
            return Ok(None);
        }
        self.load_config().map(Some)
    }

    /// Locates restic as configured.
    pub async fn restic(&self, config: &Config) -> Result<Restic, Error> {
        self.restic_with(Some(&config.settings)).await
    }

    /// Locates restic from the settings, or with the defaults when there is
    /// no configuration.
    pub async fn restic_with(&self, settings: Option<&Settings>) -> Result<Restic, Error> {
        let state = settings.map_or_else(|| self.env.state_dir(), |s| s.state_directory.clone());
        let link = self
            .env
            .managed_bin_dir()
            .join(crate::restic::install::LINK_NAME);
        let r = Restic::locate_with(&Lookup {
            configured: settings.and_then(|s| s.restic_binary.as_deref()),
            managed: Some(&link),
            use_system: settings.is_some_and(|s| s.use_system_restic),
            cache_dir: state.is_dir().then_some(state.as_path()),
        })
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
                match did_you_mean(n, &all) {
                    Some(hint) => msg.push_str(&hint),
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
pub async fn dispatch(cli: Cli) -> Result<Exit, Error> {
    let g = cli.global;
    let mut ctx = Context {
        env: Env::from_process(),
        printer: Printer::new(g.json, g.quiet, g.verbose),
        config_flag: g.config,
        discovery: config::labels::Discovery::NotRun,
    };
    // Loading the configuration is synchronous; the engine is asked here,
    // once, and only when the file turns discovery on.
    if !matches!(cli.command, Command::Completions(_) | Command::Man(_))
        && let Ok((file, _)) = config::discover(&ctx.env, ctx.config_flag.as_ref())
    {
        ctx.discovery = crate::sources::docker::discover::discover(&file).await;
    }
    match cli.command {
        Command::Validate => validate::run(&ctx),
        Command::List => list::run(&ctx),
        Command::Config(ConfigCommand::Show(f)) => config_show::run(&ctx, &f),
        Command::Setup(a) => setup::run(&ctx, &a).await,
        Command::Run(a) => run::run(&ctx, &a).await,
        Command::Snapshots(f) => snapshots::run(&ctx, &f).await,
        Command::Verify(a) => verify::run(&ctx, &a).await,
        Command::Status(a) => status::run(&ctx, &a).await,
        Command::Metrics(a) => metrics::run(&ctx, &a).await,
        Command::Schedule(ScheduleCommand::Show(a)) => {
            schedule::run(&ctx, schedule::Action::Show, &a).await
        }
        Command::Schedule(ScheduleCommand::Install(a)) => {
            schedule::run(&ctx, schedule::Action::Install, &a).await
        }
        Command::Schedule(ScheduleCommand::Remove(a)) => {
            schedule::run(&ctx, schedule::Action::Remove, &a).await
        }
        Command::SetupRestic(a) => setup_restic::run(&ctx, &a).await,
        Command::UpdateRestic(a) => update_restic::run(&ctx, &a).await,
        Command::ResticVersion => restic_version::run(&ctx).await,
        Command::Completions(a) => completions::run(&a),
        Command::Man(a) => man::run(&ctx, &a),
        Command::Notify(crate::cli::NotifyCommand::Test(a)) => notify::test(&ctx, &a).await,
        Command::Notify(crate::cli::NotifyCommand::Check) => notify::check(&ctx).await,
        Command::Serve(a) => serve::run(&ctx, &a).await,
        Command::Restore(a) => restore::run(&ctx, &a).await,
        Command::Restic(a) => restic_exec::run(&ctx, &a).await,
        Command::Env(a) => restic_exec::env(&ctx, &a),
    }
}

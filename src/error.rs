//! The command-level error, and how it ends the process.

use crate::config::Diagnostic;

/// An error that ends a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The configuration could not be found or is invalid (exit 2).
    #[error("{}", render(.0))]
    Config(Vec<Diagnostic>),
    #[error("{0}")]
    ConfigMissing(String),
    #[error(transparent)]
    Restic(#[from] crate::restic::binary::BinaryError),
    #[error(transparent)]
    Install(#[from] crate::restic::install::InstallError),
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// Work that failed (exit 1), or a choice that cannot work (exit 2).
    #[error(transparent)]
    Failure(#[from] crate::model::Failure),
    #[error("{0}")]
    Other(String),
}

fn render(d: &[Diagnostic]) -> String {
    let mut s = d
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\nerror: ");
    if d.len() > 1 {
        s.push_str(&format!("\n{} errors in the configuration", d.len()));
    }
    s
}

impl Error {
    /// How the command ends: invalid (2) for usage and configuration
    /// errors, failed (1) otherwise.
    pub fn exit(&self) -> crate::model::Exit {
        match self {
            Error::Usage(_) | Error::Config(_) | Error::ConfigMissing(_) => {
                crate::model::Exit::Invalid
            }
            Error::Failure(f) => f.exit(),
            _ => crate::model::Exit::Failed,
        }
    }
}

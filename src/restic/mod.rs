//! Everything that knows how restic behaves: where the binary is, how a
//! destination becomes a repository, how to call it without putting secrets
//! on the command line, what its JSON looks like and what its failures mean.

pub mod binary;
pub mod command;
pub mod error;
pub mod install;
pub mod lock_wait;
pub mod ls;
pub mod ops;
pub mod output;
pub mod probe;
pub mod repo;
pub mod rest_config;
pub mod restore;

pub use binary::{Lookup, Restic, Version};
pub use command::ResticCall;
pub use error::ErrorClass;
pub use lock_wait::retry_while_locked;
pub use repo::Repository;

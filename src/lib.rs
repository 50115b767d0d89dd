//! restic-manager: runs, schedules, monitors and restores restic backups for
//! many services from one TOML file. See docs/architecture.md for the module
//! map.

pub mod cli;
pub mod commands;
pub mod config;
pub mod engine;
pub mod error;
pub mod health;
pub mod history;
pub mod hooks;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod output;
pub mod process;
pub mod restic;
pub mod restore;
pub mod runlog;
pub mod schedule;
pub mod sources;
pub mod verify;
pub mod web;

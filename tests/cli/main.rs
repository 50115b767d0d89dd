//! End-to-end tests: the real binary, the real restic, a temporary HOME.

// The whole crate is test code, but clippy's `allow-unwrap-in-tests` only
// covers `#[test]` functions, not the harness and helpers around them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;

mod browser;
mod config;
mod corpus;
mod databases;
mod deadnet;
mod deploy;
mod destinations;
mod docker;
mod docs;
mod dumps;
mod example;
mod examples;
mod fanout;
mod fleet;
mod hostile;
mod includes;
mod install;
mod labels;
mod legacy;
mod metrics;
mod notify;
mod packages;
mod passthrough;
mod perf;
mod receiver;
mod reliability;
mod restore;
mod run;
mod schedule;
mod servers;
mod smoke;
mod status;
mod verify;
mod versions;
mod web;

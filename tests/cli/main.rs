//! End-to-end tests: the real binary, the real restic, a temporary HOME.

mod harness;

mod config;
mod example;
mod run;
mod smoke;

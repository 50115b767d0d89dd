//! End-to-end tests: the real binary, the real restic, a temporary HOME.

mod harness;

mod config;
mod databases;
mod deploy;
mod destinations;
mod docker;
mod dumps;
mod example;
mod fanout;
mod install;
mod restore;
mod run;
mod schedule;
mod servers;
mod smoke;

//! End-to-end tests: the real binary, the real restic, a temporary HOME.

mod harness;

mod browser;
mod config;
mod deploy;
mod destinations;
mod example;
mod fanout;
mod install;
mod metrics;
mod notify;
mod receiver;
mod run;
mod schedule;
mod servers;
mod smoke;
mod status;
mod verify;
mod web;

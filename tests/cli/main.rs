//! End-to-end tests: the real binary, the real restic, a temporary HOME.

mod harness;

mod browser;
mod config;
mod databases;
mod deploy;
mod destinations;
mod docker;
mod dumps;
mod example;
mod fanout;
mod install;
mod metrics;
mod notify;
mod receiver;
mod restore;
mod run;
mod schedule;
mod servers;
mod smoke;
mod status;
mod verify;
mod web;

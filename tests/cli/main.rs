//! End-to-end tests: the real binary, the real restic, a temporary HOME.

mod harness;

mod config;
mod destinations;
mod example;
mod fanout;
mod run;
mod schedule;
mod servers;
mod smoke;

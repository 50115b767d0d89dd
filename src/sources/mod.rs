//! What a service backs up besides plain paths: Docker volumes and the
//! containers stopped around them, streamed database dumps.

pub mod container_password;
pub mod docker;
pub mod dump;

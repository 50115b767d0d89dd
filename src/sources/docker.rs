//! Docker volumes and containers through the Engine API (bollard).

//! litefs-sim: a LiteFS stand-in on real FUSE for tests.
//!
//! One process serves several mounts ("nodes") over one backing directory
//! and one in-memory lease. Only the lease holder accepts writes to database
//! files; the others look and fail like LiteFS replicas. It simulates
//! failover, not replication: every node reads the same bytes.
//!
//! The binary is `litefs-sim`; tests drive it through [`harness::Sim`].

pub mod cli;
pub mod cluster;
pub mod control;
pub mod fs;
pub mod halt;
pub mod halt_ops;
pub mod harness;
pub mod inodes;
pub mod lease;
pub mod locks;
pub mod log;
pub mod mounts;
pub mod names;
pub mod pos;
pub mod replication;
pub mod signals;
pub mod stats;

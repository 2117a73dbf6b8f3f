//! segpipe: a customer segmentation pipeline in one binary.
//!
//! Stages are plain functions over the types in [`model`]:
//! [`generate`] and [`api`] make data, [`extract`] validates and joins it,
//! [`transform`] segments it, [`load`] writes the report tables. The
//! subcommands in [`commands`] are thin shells that move CSV checkpoints
//! around those functions; [`pipeline`] chains them in memory for `run`.

pub mod api;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod customer_segments;
pub mod error;
pub mod extract;
pub mod generate;
pub mod interchange;
pub mod interner;
pub mod key_order;
pub mod load;
pub mod logging;
pub mod mobile;
pub mod model;
pub mod odd_dates;
pub mod opts;
pub mod people;
pub mod pipeline;
pub mod progress;
pub mod quality_gate;
pub mod report;
pub mod report_tables;
pub mod rng;
pub mod rows;
pub mod scratch;
pub mod secret;
pub mod shard;
pub mod spool;
pub mod steps;
pub mod summary;
pub mod table;
pub mod transform;

pub use error::Error;

/// Entry point used by `main`: set up logging, resolve settings, dispatch.
pub fn run(cli: cli::Cli) -> Result<(), Error> {
    logging::init(&cli.global);
    commands::dispatch(cli)
}

//! Integration tests: one binary, shared helpers, one file per area.

mod airflow;
mod api;
mod checkpoint;
mod cli;
mod extract;
mod generate;
mod hostile_upstream;
mod load_postgres;
mod load_sqlite;
mod messages;
mod pg;
mod real_data;
mod report;
mod run;
mod schema_declarations;
mod shards;
mod strict_server;
mod transform;
mod upstream_faults;
mod util;

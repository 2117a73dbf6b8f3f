//! Integration tests: one binary, shared helpers, one file per area.

mod api;
mod cli;
mod extract;
mod generate;
mod load_postgres;
mod load_sqlite;
mod pg;
mod run;
mod strict_server;
mod util;

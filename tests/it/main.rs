//! Integration tests: one binary, shared helpers, one file per area.

mod util;
mod cli;
mod extract;
mod strict_server;
mod generate;

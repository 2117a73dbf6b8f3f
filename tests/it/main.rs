//! Integration tests: one binary, shared helpers, one file per area.

mod api;
mod cli;
mod extract;
mod generate;
mod strict_server;
mod util;

//! Integration tests: one binary, shared helpers, one file per area.

mod util;
mod load_postgres;
mod load_sqlite;
mod pg;

//! Integration tests: one binary, shared helpers, one file per area.

mod api;
mod util;

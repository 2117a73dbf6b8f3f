//! `run`: every stage in one process, no CSV in between.

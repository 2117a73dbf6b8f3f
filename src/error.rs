//! The top-level error: wraps each stage's error and owns the exit-code map.

use std::error::Error as StdError;

use crate::{api, checkpoint, config, extract, generate, load, transform};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Boxed: `config::ConfigError` is large and would bloat every `Result`.
    #[error(transparent)]
    Config(Box<config::Error>),
    #[error(transparent)]
    Generate(#[from] generate::Error),
    #[error(transparent)]
    Api(#[from] api::Error),
    #[error(transparent)]
    Extract(#[from] extract::Error),
    #[error(transparent)]
    Transform(#[from] transform::Error),
    #[error(transparent)]
    Load(#[from] load::Error),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::Error),
    #[error(transparent)]
    Quality(#[from] crate::quality_gate::Error),
    #[error("cannot write to stdout")]
    Stdout(#[source] std::io::Error),
}

impl From<config::Error> for Error {
    fn from(e: config::Error) -> Self {
        Error::Config(Box::new(e))
    }
}

impl Error {
    /// DESIGN §6: 1 = runtime failure, 2 = usage, config or input error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Config(_) => 2,
            Error::Generate(e) => match e {
                generate::Error::Io { .. } | generate::Error::Csv { .. } => 1,
            },
            Error::Api(e) => match e {
                api::Error::Bind { .. } => 2,
                api::Error::Signal(_) | api::Error::Io(_) => 1,
            },
            Error::Extract(e) => match e {
                extract::Error::Open { .. }
                | extract::Error::Csv { .. }
                | extract::Error::Structural { .. }
                | extract::Error::Truth { .. }
                | extract::Error::ApiUrl { .. } => 2,
                extract::Error::Batch { .. } | extract::Error::Spool(_) => 1,
            },
            Error::Transform(e) => match e {
                transform::Error::NoCustomers
                | transform::Error::Features { .. }
                | transform::Error::ModelRead { .. }
                | transform::Error::ModelParse { .. }
                | transform::Error::ModelMismatch { .. }
                | transform::Error::Holdout { .. } => 2,
                transform::Error::Spool(_) => 1,
            },
            Error::Load(e) => match e {
                load::Error::Url { .. } => 2,
                load::Error::Runtime(_)
                | load::Error::Connect { .. }
                | load::Error::MissingDatabase { .. }
                | load::Error::Lock(_)
                | load::Error::Migrate { .. }
                | load::Error::MigratePostgres { .. }
                | load::Error::MigrateSqlite { .. }
                | load::Error::Ddl { .. }
                | load::Error::Copy { .. }
                | load::Error::Value { .. }
                | load::Error::Injected { .. }
                | load::Error::StagingPanic
                | load::Error::DependentView { .. }
                | load::Error::LockTimeout { .. }
                | load::Error::Record(_)
                | load::Error::Commit(_)
                | load::Error::Dir { .. }
                | load::Error::Spill { .. }
                | load::Error::Sqlite { .. } => 1,
            },
            Error::Checkpoint(e) => match e {
                checkpoint::Error::Write { .. } | checkpoint::Error::ShardWrite { .. } => 1,
                checkpoint::Error::Open { .. }
                | checkpoint::Error::Parse { .. }
                | checkpoint::Error::Shard { .. } => 2,
            },
            Error::Quality(_) | Error::Stdout(_) => 1,
        }
    }

    /// A closed stdout (`segpipe … | head`) is not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Stdout(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The message and its causes on one line, joined by `: `.
    pub fn chain(&self) -> String {
        chain(self)
    }
}

/// Longest part of an error chain kept on the line (an upstream's HTML page
/// or a PostgreSQL DETAIL can be long).
const PART_MAX: usize = 300;

/// Join an error and its `source()` chain with `: ` on one line, skipping
/// repeats: each part has its line breaks folded and is cut to a readable
/// length (DESIGN §6).
pub fn chain(err: &dyn StdError) -> String {
    let mut out = one_line(&err.to_string(), PART_MAX);
    let mut cur = err.source();
    while let Some(e) = cur {
        let msg = one_line(&e.to_string(), PART_MAX);
        if !msg.is_empty() && !out.ends_with(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        cur = e.source();
    }
    out
}

/// `text` with every run of white space (line breaks included) folded into
/// one space, cut to `max` characters with `…`.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 4));
    let mut chars = 0;
    for word in text.split_whitespace() {
        if chars > 0 {
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= max {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_causes_on_one_line() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let err = Error::Stdout(io);
        assert_eq!(err.chain(), "cannot write to stdout: no such file");
        assert_eq!(err.exit_code(), 1);
        assert!(!err.is_broken_pipe());
        let pipe = Error::Stdout(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "x"));
        assert!(pipe.is_broken_pipe());
    }

    // See: issue 8
    #[test]
    fn issue_8_multi_line_causes_print_on_one_line() {
        let html =
            "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n</body>\n</html>\n";
        let err = Error::Stdout(std::io::Error::other(html));
        assert_eq!(
            err.chain(),
            "cannot write to stdout: <html> <head><title>502 Bad Gateway</title></head> <body> </body> </html>"
        );
        let long = "x".repeat(1000);
        let line = one_line(&long, 10);
        assert_eq!(line, format!("{}…", "x".repeat(10)));
    }

    #[test]
    fn config_errors_exit_2() {
        let err = Error::from(config::Error::Missing("x.toml".into()));
        assert_eq!(err.exit_code(), 2);
        assert_eq!(err.chain(), "config file `x.toml` not found");
    }
}

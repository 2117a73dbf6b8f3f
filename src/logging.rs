//! Logging to stderr with `tracing`: text or JSON, level from `-v` or `RUST_LOG`.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::cli::{GlobalArgs, LogFormat};

/// Install the global subscriber once; later calls (tests) are no-ops.
pub fn init(args: &GlobalArgs) {
    // The builder's own filter defaults to INFO; `filter` below decides.
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let filter = filter(args.verbose, std::env::var("RUST_LOG").ok().as_deref());
    let _ = match args.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .finish()
            .with(filter)
            .try_init(),
        LogFormat::Text => builder.compact().finish().with(filter).try_init(),
    };
}

/// `-v` wins over `RUST_LOG`; `RUST_LOG` takes `level` or `target=level,…`
/// (the `Targets` syntax: EnvFilter's span and field filters, and the regex
/// engine they need in every build, are not worth it for a batch tool).
fn filter(verbose: u8, rust_log: Option<&str>) -> Targets {
    let level = match verbose {
        0 => tracing::Level::WARN,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    if verbose == 0
        && let Some(Ok(targets)) = rust_log
            .filter(|s| !s.trim().is_empty())
            .map(str::parse::<Targets>)
    {
        return targets;
    }
    Targets::new().with_default(level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn verbose_flag_beats_rust_log() {
        let f = filter(2, Some("error"));
        assert!(f.would_enable("segpipe::load", &Level::DEBUG));
        assert!(!f.would_enable("segpipe::load", &Level::TRACE));
    }

    #[test]
    fn rust_log_sets_levels_per_target() {
        let f = filter(0, Some("segpipe::extract=debug,info"));
        assert!(f.would_enable("segpipe::extract::api", &Level::DEBUG));
        assert!(!f.would_enable("segpipe::load", &Level::DEBUG));
        assert!(f.would_enable("segpipe::load", &Level::INFO));
    }

    #[test]
    fn unreadable_rust_log_falls_back_to_warnings() {
        let f = filter(0, Some("segpipe=loud"));
        assert!(f.would_enable("segpipe", &Level::WARN));
        assert!(!f.would_enable("segpipe", &Level::INFO));
        assert!(filter(0, None).would_enable("segpipe", &Level::WARN));
        assert!(filter(0, Some(" ")).would_enable("segpipe", &Level::WARN));
    }
}

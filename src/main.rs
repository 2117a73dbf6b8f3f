//! The `segpipe` binary: parse arguments, run, print one-line errors, exit with DESIGN §6 codes.

use std::process::ExitCode;

use clap::Parser;
use segpipe::cli::{Cli, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Machines reading JSON logs get the error as one JSON object too.
    let json = cli.global.log_format == LogFormat::Json;
    match segpipe::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) if json => {
            let line = serde_json::json!({
                "level": "ERROR",
                "error": err.chain(),
                "exit_code": err.exit_code(),
            });
            eprintln!("{line}");
            ExitCode::from(err.exit_code())
        }
        Err(err) => {
            eprintln!("error: {}", err.chain());
            ExitCode::from(err.exit_code())
        }
    }
}

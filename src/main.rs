//! The `segpipe` binary: parse arguments, run, print one-line errors, exit with DESIGN §6 codes.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = segpipe::cli::Cli::parse();
    match segpipe::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if err.is_broken_pipe() => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", err.chain());
            ExitCode::from(err.exit_code())
        }
    }
}

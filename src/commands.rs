//! Subcommand shells: settings → stage opts → stage fn → checkpoint files.

use crate::cli::{Cli, Command};
use crate::config::{self, Override, Settings};
use crate::error::Error;

/// Run the chosen subcommand.
pub fn dispatch(cli: Cli) -> Result<(), Error> {
    let flags = overrides(&cli.command)?;
    let settings = Settings::load(cli.global.config.as_deref(), flags)?;
    match cli.command {
        Command::Config(_) => {
            print!("{}", settings.to_masked_toml());
            Ok(())
        }
        _ => Ok(()),
    }
}

fn overrides(cmd: &Command) -> Result<Vec<Override>, Error> {
    let mut o = Vec::new();
    let _ = (cmd, &mut o, config::flag::<u64>);
    Ok(o)
}

//! One module per subcommand; [`dispatch`] routes a parsed command line to them.

pub mod airbyte;
pub mod check;
#[cfg(feature = "demo")]
pub mod demo;
pub mod discover;
pub mod docs;
pub mod list;
pub mod run;
pub mod runs;
pub mod singer;
mod source;
pub mod spec;
pub mod state;

use std::io::Write;
use std::path::Path;

use connector_api::registry::Registry;
use connector_api::{Error, Result};

use crate::cli::{Command, DEFAULT_DEST};
use crate::config_file::ConfigFile;
use crate::exit::Exit;

/// Runs `command`, writing its output to `out`.
pub async fn dispatch(command: Command, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let registry = connector_api::registry::registry()?;
    match command {
        Command::List { json } => list::list(&registry, json, out),
        Command::Spec { id } => spec::spec(&registry, &id, out),
        Command::Check { config, json } => check::check(&load(&config, &registry)?, json, out).await,
        Command::Discover { config } => discover::discover(&load(&config, &registry)?, out).await,
        Command::Run(args) => run::run(&registry, args, out).await,
        Command::Runs { dest, limit, json } => runs::runs(&dest, limit, json, out).await,
        Command::State { action } => state::state(&registry, action, out).await,
        Command::Airbyte(args) => airbyte::airbyte(&registry, args, out).await,
        Command::Singer(args) => singer::singer(&registry, args, out).await,
        Command::Docs { id } => {
            let connector = registry.find(&id)?;
            out.write_all(docs::render(connector.as_ref()).as_bytes()).map_err(write_err)?;
            Ok(Exit::Ok)
        }
        #[cfg(feature = "demo")]
        Command::Demo { dest, quiet, json } => demo::demo(&dest, quiet, json, out).await,
    }
}

fn load(path: &Path, registry: &Registry) -> Result<ConfigFile> {
    ConfigFile::load(path, registry)
}

/// The destination to use: the flag, else the config file's, else the default.
pub(crate) fn choose_dest(flag: Option<&str>, config: &ConfigFile) -> String {
    flag.or(config.destination()).unwrap_or(DEFAULT_DEST).to_string()
}

/// A failure writing to stdout (a closed pipe).
pub(crate) fn write_err(e: std::io::Error) -> Error {
    Error::internal(format!("cannot write output: {e}"))
}

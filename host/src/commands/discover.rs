//! `connector-host discover --config FILE`: the streams a configuration can read.

use std::io::Write;

use connector_api::Result;

use super::write_err;
use crate::config_file::ConfigFile;
use crate::exit::Exit;

/// Prints the connector's catalog as JSON.
pub async fn discover(config: &ConfigFile, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let catalog = config.connector().discover(config.config()).await?;
    writeln!(out, "{}", serde_json::to_string_pretty(&catalog).unwrap_or_default()).map_err(write_err)?;
    Ok(Exit::Ok)
}

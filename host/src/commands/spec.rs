//! `connector-host spec <id>`: the JSON Schema of a connector's `[config]`.

use std::io::Write;

use connector_api::Result;
use connector_api::registry::Registry;

use super::write_err;
use crate::exit::Exit;

/// Prints the config schema of connector `id`.
pub fn spec(registry: &Registry, id: &str, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let connector = registry.find(id)?;
    let schema = connector.spec().config_schema;
    writeln!(out, "{}", serde_json::to_string_pretty(&schema).unwrap_or_default()).map_err(write_err)?;
    Ok(Exit::Ok)
}

//! `connector-host list`: every connector linked into this binary, then every
//! destination it loads into.

use std::io::Write;

use connector_api::Result;
use connector_api::registry::Registry;

use super::write_err;
use crate::exit::Exit;
use crate::sink::registry::DESTINATIONS;
use crate::text_table;

/// Prints the registered connectors, sorted by id, as a table or JSON; a table is
/// followed by the registered destinations under a heading of their own. The JSON
/// stays the array of connector metadata that scripts already read.
pub fn list(registry: &Registry, json: bool, out: &mut (dyn Write + Send)) -> Result<Exit> {
    let connectors = registry.all();
    if json {
        let all: Vec<_> = connectors.iter().map(|c| c.metadata()).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&all).unwrap_or_default()).map_err(write_err)?;
    } else {
        let rows: Vec<Vec<String>> = connectors
            .iter()
            .map(|c| {
                let m = c.metadata();
                vec![m.id.to_string(), m.name.to_string(), m.version.to_string(), m.description.to_string()]
            })
            .collect();
        out.write_all(text_table::render(&["ID", "NAME", "VERSION", "DESCRIPTION"], &rows).as_bytes())
            .map_err(write_err)?;
        let rows: Vec<Vec<String>> = DESTINATIONS
            .iter()
            .map(|d| vec![d.schemes.join(" "), d.example.to_string(), d.description.to_string()])
            .collect();
        let destinations = text_table::render(&["SCHEME", "EXAMPLE", "DESCRIPTION"], &rows);
        write!(out, "\nDestinations (--dest):\n{destinations}").map_err(write_err)?;
    }
    Ok(Exit::Ok)
}

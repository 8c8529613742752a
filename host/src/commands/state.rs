//! `connector-host state show|reset`: the checkpoints incremental streams resume from.

use std::io::Write;

use connector_api::registry::Registry;
use connector_api::{Error, Result};

use super::{choose_dest, write_err};
use crate::cli::StateAction;
use crate::config_file::ConfigFile;
use crate::exit::Exit;
use crate::sink;

/// Shows or resets the state of the connector instance a config file describes.
pub async fn state(registry: &Registry, action: StateAction, out: &mut (dyn Write + Send)) -> Result<Exit> {
    match action {
        StateAction::Show { config, dest } => {
            let config = ConfigFile::load_identity(&config, registry)?;
            let mut destination =
                sink::registry::open_existing(&choose_dest(dest.as_deref(), &config)).await?;
            let state = destination.load_state(&config.instance()).await?;
            let shown = serde_json::json!({"instance": config.instance(), "streams": state.streams});
            writeln!(out, "{}", serde_json::to_string_pretty(&shown).unwrap_or_default())
                .map_err(write_err)?;
        }
        StateAction::Reset { config, dest, streams } => {
            let config = ConfigFile::load_identity(&config, registry)?;
            if let Some(asked) = &streams {
                let catalog = match config.connector().static_catalog() {
                    Some(catalog) => catalog,
                    None => config.connector().discover(config.config()).await?,
                };
                let known: Vec<&str> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
                if let Some(unknown) = asked.iter().find(|s| !known.contains(&s.as_str())) {
                    return Err(Error::config("streams", format!("unknown stream `{unknown}`"))
                        .with_hint(format!("Known streams: {}", known.join(", "))));
                }
            }
            let mut destination =
                sink::registry::open_existing(&choose_dest(dest.as_deref(), &config)).await?;
            let n = destination.reset_state(&config.instance(), streams.as_deref()).await?;
            writeln!(
                out,
                "Removed {n} checkpoint(s) of {} in {}; the next run reads those streams from the start.",
                config.instance(),
                destination.describe()
            )
            .map_err(write_err)?;
        }
    }
    Ok(Exit::Ok)
}

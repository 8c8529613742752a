//! The command line, declared with clap so `--help` documents every flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::sink::registry;

/// The default destination: an SQLite file in the working directory.
pub const DEFAULT_DEST: &str = "sqlite:./datahub.db";

/// Where `demo` loads by default: its own file, so simulated tenants never mix with a
/// hub holding real data.
pub const DEFAULT_DEMO_DEST: &str = "sqlite:./datahub-demo.db";

/// What `connector-host --help` says before the list of subcommands.
const ABOUT: &str = "connector-host runs data-hub connectors and loads what they read into a database.

Start with `connector-host demo` (a full sync from a built-in Qlik Cloud simulator into
./datahub-demo.db), then `connector-host list` to see the connectors this binary ships.
A connector is configured with a TOML file:

    connector = \"qlik-sense\"
    [config]
    tenant_url = \"https://your-tenant.eu.qlikcloud.com\"
    api_key = { env = \"QLIK_API_KEY\" }   # or { file = \"/run/secrets/qlik\" }

Every row carries its tenant (`_instance`): several tenants share one hub, and a run
replaces only its own tenant's rows of the streams it reads.

Exit codes: 0 ok; 1 internal error; 2 usage or config error; 3 source authentication
or permission error (the API key); 4 source failed after retries; 5 partial (some
streams failed, the others were committed); 6 destination error (cannot open, connect,
log in or write); 7 conflict (another run of this tenant is loading this destination,
or a table with our name is not ours); 130 interrupted (SIGINT/SIGTERM, rolled back).";

/// The command line of `connector-host`.
#[derive(Debug, Parser)]
#[command(name = "connector-host", version, about = "Runs data-hub connectors and loads what they read into a database.", long_about = ABOUT)]
pub struct Cli {
    /// Log format on stderr. The level comes from RUST_LOG (default `info`, or `warn`
    /// on a terminal, where progress bars show the same).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the connectors linked into this binary, then the destinations it loads into.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a connector's configuration JSON Schema.
    Spec {
        /// Connector id, as shown by `list` (e.g. `qlik-sense`).
        id: String,
    },
    /// Check that a configuration can reach and read its source, step by step.
    ///
    /// Exits 0 when no step failed (warnings allowed), 4 when a step failed, 2 when the
    /// config file itself is invalid.
    Check {
        /// The connector's TOML config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the streams a configuration can read, as a JSON catalog.
    Discover {
        /// The connector's TOML config file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Read the selected streams and load them into a destination.
    ///
    /// A run changes only its own tenant's rows of the streams it reads. Full-refresh
    /// streams replace the tenant's rows when the stream completes; incremental streams
    /// resume from their saved checkpoint and upsert by primary key. A stream that fails
    /// keeps its previous rows and checkpoint while the others are committed (exit 5;
    /// `--atomic` for all or nothing). A killed run, or Ctrl-C/SIGTERM, leaves the
    /// previous data and checkpoints as they were. One run per tenant and destination at
    /// a time: a second one exits 7 at once.
    ///
    /// Exit codes: 0 ok; 1 internal error; 2 usage or config error; 3 source
    /// authentication or permission error; 4 source failed after retries; 5 partial; 6
    /// destination error; 7 conflict; 130 interrupted.
    Run(RunArgs),
    /// List recent runs recorded in a destination.
    Runs {
        /// Destination to read (its help lists the registered destinations).
        #[arg(long, default_value = DEFAULT_DEST, help = registry::read_help())]
        dest: String,
        /// How many runs to show, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show or reset the checkpoints incremental streams resume from.
    State {
        /// show or reset.
        #[command(subcommand)]
        action: StateAction,
    },
    /// Print a connector's reference documentation as Markdown.
    Docs {
        /// Connector id, as shown by `list`.
        id: String,
    },
    /// Run a connector as an Airbyte source: Airbyte protocol messages on stdout.
    ///
    /// Airbyte (or PyAirbyte) calls `spec`, `check --config`, `discover --config` and
    /// `read --config --catalog [--state]` with a JSON config holding the connector's
    /// `config` object, secrets inline. Errors are TRACE messages; `check` exits 0 once it
    /// printed its CONNECTION_STATUS, the other commands with connector-host's exit codes.
    Airbyte(AirbyteArgs),
    /// Run a connector as a Singer tap: SCHEMA, RECORD and STATE messages on stdout.
    ///
    /// `--discover` prints the Singer catalog; a catalog passed back with `--catalog`
    /// selects streams (`selected`), their replication method and fields; `--state`
    /// resumes incremental streams from the bookmarks of the last STATE message.
    Singer(SingerArgs),
    /// Run a full Qlik Sense sync from a built-in simulated tenant: no account needed.
    #[cfg(feature = "demo")]
    Demo {
        /// Where to load the data (its own file by default, never your hub's).
        #[arg(long, default_value = DEFAULT_DEMO_DEST)]
        dest: String,
        /// Print nothing but errors.
        #[arg(long)]
        quiet: bool,
        /// Print a JSON summary on stdout instead of the table.
        #[arg(long)]
        json: bool,
    },
}

impl Command {
    /// Whether the command was asked to print nothing but errors.
    pub fn quiet(&self) -> bool {
        match self {
            Command::Run(args) => args.quiet,
            #[cfg(feature = "demo")]
            Command::Demo { quiet, .. } => *quiet,
            _ => false,
        }
    }
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The connector's TOML config file; give it several times, or a folder of `*.toml`
    /// files, to sync many tenants (one summary line each, `--parallel` at once).
    #[arg(long, short, required = true)]
    pub config: Vec<PathBuf>,
    /// With several configs: how many tenants sync at once, each with its own rate
    /// budget, checkpoints and lock; one tenant's failure never stops another's.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// Comma-separated streams to read (default: every stream the config allows); can
    /// only narrow the config's `streams`.
    #[arg(long, value_delimiter = ',', value_parser = stream_name)]
    pub streams: Option<Vec<String>>,
    /// Read every stream in full, ignoring saved checkpoints.
    #[arg(long)]
    pub full_refresh: bool,
    /// All or nothing: when any stream fails, commit none of them (by default the
    /// streams that completed are committed and the run exits 5).
    #[arg(long)]
    pub atomic: bool,
    /// Destination (its help lists the registered destinations).
    #[arg(long, help = registry::run_help(DEFAULT_DEST))]
    pub dest: Option<String>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
    /// Print a JSON summary on stdout instead of the table (an array with several
    /// configs).
    #[arg(long)]
    pub json: bool,
}

/// `state show` and `state reset`.
#[derive(Debug, Subcommand)]
pub enum StateAction {
    /// Print the saved checkpoints of the connector instance a config file describes.
    Show {
        /// The connector's TOML config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Destination holding the state (default: the config file's, else sqlite:./datahub.db).
        #[arg(long)]
        dest: Option<String>,
    },
    /// Forget saved checkpoints so the next run reads those streams from the start.
    Reset {
        /// The connector's TOML config file.
        #[arg(long, short)]
        config: PathBuf,
        /// Destination holding the state (default: the config file's, else sqlite:./datahub.db).
        #[arg(long)]
        dest: Option<String>,
        /// Comma-separated streams to reset (default: all).
        #[arg(long, value_delimiter = ',', value_parser = stream_name)]
        streams: Option<Vec<String>>,
    },
}

/// One name of a comma-separated `--streams` list, without the spaces around it
/// (`--streams "users, groups"`).
fn stream_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    if name.is_empty() {
        return Err("empty stream name; separate names with commas, e.g. users,groups".into());
    }
    Ok(name.to_string())
}

/// Flags of `airbyte`.
#[derive(Debug, Args)]
pub struct AirbyteArgs {
    /// The connector to run, as `list` shows it (`qlik-sense`, `scim`). A container image
    /// sets it in its environment, so Airbyte's `spec`, `check` … reach it unchanged.
    #[arg(long, env = "CONNECTOR_HOST_CONNECTOR")]
    pub connector: String,
    /// The Airbyte command.
    #[command(subcommand)]
    pub command: AirbyteCommand,
}

/// The commands of the Airbyte protocol.
#[derive(Debug, Subcommand)]
pub enum AirbyteCommand {
    /// Print the SPEC message: the config's JSON Schema, secret fields marked
    /// `airbyte_secret`.
    Spec,
    /// Print a CONNECTION_STATUS: whether the config can read its source, and if not, why.
    Check {
        /// JSON file holding the connector's config object, secrets inline.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the CATALOG message: streams, schemas, primary keys, cursors, sync modes.
    Discover {
        /// JSON file holding the connector's config object, secrets inline.
        #[arg(long)]
        config: PathBuf,
    },
    /// Read the streams the configured catalog selects: RECORD, STATE, stream statuses.
    Read {
        /// JSON file holding the connector's config object, secrets inline.
        #[arg(long)]
        config: PathBuf,
        /// The configured catalog: the streams to read and each one's sync mode.
        #[arg(long)]
        catalog: PathBuf,
        /// The per-stream STATE messages of the last read (a JSON list) to resume from.
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

/// Flags of `singer`.
#[derive(Debug, Args)]
pub struct SingerArgs {
    /// The connector to run, as `list` shows it (`qlik-sense`, `scim`); a Meltano plugin
    /// or container sets it in its environment.
    #[arg(long, env = "CONNECTOR_HOST_CONNECTOR")]
    pub connector: String,
    /// JSON file holding the connector's config object, secrets inline.
    #[arg(long)]
    pub config: PathBuf,
    /// Print the Singer catalog instead of reading (`--catalog` and `--state` are then
    /// ignored: Meltano passes its state to discovery too).
    #[arg(long)]
    pub discover: bool,
    /// The catalog choosing streams (`selected`), their `replication-method` and fields;
    /// every stream in its default mode without one.
    #[arg(long, visible_alias = "properties")]
    pub catalog: Option<PathBuf>,
    /// The value of the last STATE message of a previous sync, to resume from.
    #[arg(long)]
    pub state: Option<PathBuf>,
}

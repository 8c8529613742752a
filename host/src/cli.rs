//! The command line, declared with clap so `--help` documents every flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default destination: an SQLite file in the working directory.
pub const DEFAULT_DEST: &str = "sqlite:./datahub.db";

/// What `connector-host --help` says before the list of subcommands.
const ABOUT: &str = "connector-host runs data-hub connectors and loads what they read into a database.

Start with `connector-host demo` (a full sync from a built-in Qlik Cloud simulator into
./datahub.db), then `connector-host list` to see the connectors this binary ships.
A connector is configured with a TOML file:

    connector = \"qlik-sense\"
    [config]
    tenant_url = \"https://your-tenant.eu.qlikcloud.com\"
    api_key = { env = \"QLIK_API_KEY\" }   # or { file = \"/run/secrets/qlik\" }

Exit codes: 0 ok, 1 internal error, 2 usage or config error, 3 authentication or
permission error, 4 source failure after retries.";

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
    /// List the connectors linked into this binary.
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
    /// Full-refresh streams replace their table only when the whole run succeeds;
    /// incremental streams resume from their saved checkpoint and upsert by primary key.
    /// A failed or killed run leaves the previous data and checkpoints as they were.
    /// Ctrl-C or SIGTERM rolls back the same way. Exits 0 on success, 2 for a bad config, 3 when the source rejects the
    /// credentials, 4 when the source fails after retries, 1 otherwise.
    Run(RunArgs),
    /// List recent runs recorded in a destination.
    Runs {
        /// Destination to read (`sqlite:PATH`, `postgres://…`, `jsonl:DIR`, `csv:DIR`).
        #[arg(long, default_value = DEFAULT_DEST)]
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
    /// Run a full Qlik Sense sync from a built-in simulated tenant: no account needed.
    Demo {
        /// Where to load the data.
        #[arg(long, default_value = DEFAULT_DEST)]
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
            Command::Demo { quiet, .. } => *quiet,
            _ => false,
        }
    }
}

/// Flags of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The connector's TOML config file.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Comma-separated streams to read (default: all).
    #[arg(long, value_delimiter = ',')]
    pub streams: Option<Vec<String>>,
    /// Read every stream in full, ignoring saved checkpoints.
    #[arg(long)]
    pub full_refresh: bool,
    /// Destination: `sqlite:PATH`, `postgres://user@host/db`, `jsonl:DIR` or `csv:DIR`.
    /// Overrides `destination` in the config file; default `sqlite:./datahub.db`.
    #[arg(long)]
    pub dest: Option<String>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
    /// Print a JSON summary on stdout instead of the table.
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
        #[arg(long, value_delimiter = ',')]
        streams: Option<Vec<String>>,
    },
}

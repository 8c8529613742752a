//! `connector-host`: runs every data-hub connector linked into the binary and loads
//! what it reads into the hub's store.
//!
//! The binary is a thin `main` over [`run_cli`], so tests drive the exact command line
//! in-process. Connectors are found only through
//! [`connector_api::registry`]; the binary names each connector crate so the linker
//! keeps its registration.
//!
//! - [`cli`]: the command line (clap);
//! - [`config_file`]: the TOML config file, secret references and validation;
//! - [`commands`]: one module per subcommand;
//! - [`engine`]: one run of one connector instance into one destination;
//! - [`sink`]: destinations (SQLite, PostgreSQL, JSON Lines, CSV);
//! - [`progress`]: progress bars and log lines;
//! - [`text_table`]: the text tables the summary and commands print;
//! - [`exit`]: the documented exit codes.
#![deny(missing_docs)]

pub mod cli;
pub mod commands;
pub mod config_file;
pub mod engine;
pub mod exit;
pub mod progress;
pub mod sink;
pub mod text_table;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};

use clap::Parser;
use connector_api::secret::ScrubbingWriter;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, LogFormat};
pub use crate::exit::Exit;

/// Parses `args` (program name first) and runs the command, writing results to `out`
/// and errors to `err`. Returns the documented exit status.
///
/// Both writers are wrapped in a [`ScrubbingWriter`], as is the log, so no registered
/// secret (see [`connector_api::secret`]) leaves the process whatever a source echoes.
pub async fn run_cli<I, T>(args: I, out: &mut (dyn Write + Send), err: &mut (dyn Write + Send)) -> Exit
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let out = &mut ScrubbingWriter::new(out);
    let err = &mut ScrubbingWriter::new(err);
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            return if e.use_stderr() {
                let _ = err.write_all(text.as_bytes());
                Exit::Usage
            } else {
                let _ = out.write_all(text.as_bytes());
                Exit::Ok
            };
        }
    };
    init_logging(cli.log_format, cli.command.quiet());
    match commands::dispatch(cli.command, out).await {
        Ok(exit) => exit,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            Exit::from_kind(e.kind())
        }
    }
}

/// Reports panics on stderr scrubbed of registered secrets, with a backtrace when
/// `RUST_BACKTRACE` asks for one. The default hook writes the panic message, which may
/// quote an error that echoes a key, to stderr as it is.
pub fn scrub_panics() {
    std::panic::set_hook(Box::new(|info| report_panic(info, &mut std::io::stderr())));
}

/// Writes what the default hook would for `info` to `out`, scrubbed.
fn report_panic(info: &std::panic::PanicHookInfo<'_>, out: &mut dyn Write) {
    let thread = std::thread::current();
    let mut text = format!("thread '{}' {info}\n", thread.name().unwrap_or("<unnamed>"));
    let backtrace = std::backtrace::Backtrace::capture();
    if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
        text.push_str(&format!("stack backtrace:\n{backtrace}\n"));
    } else {
        text.push_str("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n");
    }
    let _ = out.write_all(connector_api::secret::scrub(&text).as_bytes());
}

/// Sends `tracing` output to stderr, scrubbed of registered secrets, as text or JSON. The level comes from `RUST_LOG`;
/// without it, `info` when stderr is not a terminal (CI, cron) and `warn` on a terminal,
/// where progress bars show what info lines would, and with `quiet` (`--quiet` promises
/// nothing but errors). Only the first call takes effect.
pub fn init_logging(format: LogFormat, quiet: bool) {
    let default = if quiet {
        "error"
    } else if std::io::stderr().is_terminal() {
        "warn"
    } else {
        "info"
    };
    // tokio-postgres logs every server NOTICE (`table … does not exist, skipping` from
    // each `DROP TABLE IF EXISTS`) at info: driver chatter, not news for an operator.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},tokio_postgres=warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| ScrubbingWriter::new(std::io::stderr()))
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    #[test]
    fn panics_are_reported_scrubbed() {
        connector_api::secret::register("panic-canary-61f0a2");
        let report = Arc::new(Mutex::new(Vec::new()));
        let sink = report.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| super::report_panic(info, &mut *sink.lock().unwrap())));
        let caught =
            std::panic::catch_unwind(|| panic!("the tenant said: token panic-canary-61f0a2 is expired"));
        std::panic::set_hook(previous);
        assert!(caught.is_err());
        let report = String::from_utf8(report.lock().unwrap().clone()).unwrap();
        assert!(report.contains("panicked at host/src/lib.rs:"), "{report}");
        assert!(report.contains("the tenant said: token **** is expired"), "{report}");
        assert!(!report.contains("panic-canary-61f0a2"), "{report}");
    }
}

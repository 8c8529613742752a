//! The `connector-host` binary: names every connector crate so the linker keeps its
//! registration, then hands the command line to [`host::run_cli`].

use std::process::ExitCode;

// A crate nothing names is not linked, and its `inventory::submit!` never runs.
use qlik_connector as _;
use scim_connector as _;

/// Syncs allocate and free a JSON value per field of every record; mimalloc's
/// thread-local free lists make that markedly cheaper than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    host::scrub_panics();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    host::run_cli(std::env::args_os(), &mut out, &mut err).await.into()
}

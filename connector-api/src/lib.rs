//! The contract every data-hub connector implements.
//!
//! A connector reads one kind of source (a Qlik Cloud tenant, a SCIM server, …) and
//! describes itself through four calls shaped after Airbyte's protocol and Singer's
//! catalog and state:
//!
//! - [`Connector::spec`]: the JSON Schema of its configuration, generated from the
//!   connector's typed config so doc comments become field documentation;
//! - [`Connector::check`]: a [`CheckReport`] of named steps (reach the source,
//!   authenticate, permissions …);
//! - [`Connector::discover`]: the [`Catalog`] of streams it can read;
//! - [`Connector::read`]: a stream of [`Message`]s (records, state checkpoints,
//!   logs, per-stream status) for the streams the caller selected.
//!
//! A connector declares its streams once ([`StreamDef`]: schema and record mapping) and
//! how each is read ([`read::Source`]: endpoint, paging, checkpoints, fan-out); the
//! [`read`] engine runs them, so no connector writes a read loop of its own.
//!
//! Connectors register at link time with [`register_connector!`]; a host finds them
//! through [`registry`] without naming any of them in its code.
#![deny(missing_docs)]

pub mod catalog;
pub mod check;
pub mod config;
pub mod connector;
pub mod cursor;
pub mod error;
pub mod http;
pub mod message;
pub mod read;
pub mod registry;
pub mod secret;
pub mod state;
pub mod stream_def;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod view;

pub use catalog::{Catalog, ConfiguredCatalog, ConfiguredStream, StreamDescriptor, SyncMode};
pub use check::{CheckReport, CheckStatus, CheckStep};
pub use connector::{Connector, MessageStream, Metadata, Spec};
pub use error::{Error, ErrorKind, HttpFailure, Result};
pub use message::{Checkpoint, LogLevel, LogMessage, Message, Record, StreamEvent, StreamStatus};
pub use registry::Registration;
pub use state::State;
pub use stream_def::{Access, Field, StreamDef, Ty};
pub use view::ViewDescriptor;

#[doc(hidden)]
pub use inventory as __inventory;

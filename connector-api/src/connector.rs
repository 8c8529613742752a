//! The [`Connector`] trait and the descriptions it returns.

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;

use crate::{Catalog, CheckReport, ConfiguredCatalog, Message, Result, State};

/// The messages a [`Connector::read`] emits, in order, as they arrive from the source.
///
/// An `Err` item ends the read: the host treats everything not yet checkpointed as lost
/// and keeps the previous data.
pub type MessageStream = BoxStream<'static, Result<Message>>;

/// Who a connector is. Shown by `connector-host list` and in generated docs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Metadata {
    /// Stable kebab-case identifier used in config files (`qlik-sense`).
    pub id: &'static str,
    /// Human name (`Qlik Sense (Qlik Cloud)`).
    pub name: &'static str,
    /// Semantic version of the connector.
    pub version: &'static str,
    /// One line saying what the connector reads.
    pub description: &'static str,
    /// Where an operator reads more (a path in this repository or a URL).
    pub documentation: &'static str,
}

/// The configuration a connector accepts, as JSON Schema (draft 2020-12).
///
/// Secret fields carry `"writeOnly": true` and `"x-secret": true` so hosts know to
/// resolve, redact and never store them; see [`crate::secret`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Spec {
    /// JSON Schema of the `config` object.
    pub config_schema: Value,
}

/// A source of records for the data hub.
///
/// The trait is object safe: hosts hold connectors as `Arc<dyn Connector>` from the
/// [`registry`](crate::registry). Every call receives the configuration as JSON; the
/// connector parses it into its own typed config with [`crate::config::parse`], so an
/// unknown or mistyped field is reported by name.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Who this connector is.
    fn metadata(&self) -> Metadata;

    /// The JSON Schema of the configuration this connector accepts.
    fn spec(&self) -> Spec;

    /// Verifies that `config` can read the source, step by step.
    ///
    /// A step that fails is reported in the [`CheckReport`], not as `Err`; `Err` is kept
    /// for configurations that cannot even be attempted (e.g. an invalid field).
    async fn check(&self, config: &Value) -> Result<CheckReport>;

    /// Lists the streams this connector can read with `config`: only those the config
    /// allows, so a host never asks for (and never empties) a stream the config excludes.
    async fn discover(&self, config: &Value) -> Result<Catalog>;

    /// Names the source instance `config` reads: a Qlik tenant's host, a SCIM server's
    /// base URL. Only what says *whose* data this is goes in, never a secret or a tuning
    /// setting, so a rotated key or a new timeout keeps the identity.
    ///
    /// Hosts key every stored row and checkpoint by it, so several tenants share one
    /// hub and a run replaces only its own tenant's rows.
    fn source_identity(&self, config: &Value) -> Result<String>;

    /// Views over this connector's tables that SQL destinations keep beside them (see
    /// [`crate::ViewDescriptor`]); none by default.
    fn views(&self) -> Vec<crate::ViewDescriptor> {
        Vec::new()
    }

    /// The catalog when it does not depend on the config, for generated documentation.
    ///
    /// Connectors whose streams are fixed return `Some`; `discover` then returns the
    /// same catalog for any valid config.
    fn static_catalog(&self) -> Option<Catalog> {
        None
    }

    /// Reads the selected streams, resuming each incremental stream from `state`.
    ///
    /// Records flow as they arrive: implementations must not buffer a whole stream, so
    /// memory stays flat however large the source. A [`Message::State`] checkpoint covers
    /// every record of its stream emitted before it.
    async fn read(&self, config: &Value, catalog: &ConfiguredCatalog, state: &State)
    -> Result<MessageStream>;
}

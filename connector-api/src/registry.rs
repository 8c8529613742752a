//! Link-time registry of connectors.
//!
//! Each connector crate submits one [`Registration`] with [`register_connector!`];
//! [`inventory`] collects them when the final binary links. Beware: a crate that
//! nothing names is not linked, so its registration never runs. A host must name every
//! connector crate it ships (`use qlik_connector as _;`).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::{Connector, Error, ErrorKind, Result};

/// A connector's entry in the registry: a constructor.
pub struct Registration {
    make: fn() -> Arc<dyn Connector>,
}

impl Registration {
    /// An entry whose connector is built by `make`.
    pub const fn new(make: fn() -> Arc<dyn Connector>) -> Self {
        Registration { make }
    }

    /// Builds the connector.
    pub fn connector(&self) -> Arc<dyn Connector> {
        (self.make)()
    }
}

inventory::collect!(Registration);

/// Registers a connector with the link-time registry.
///
/// ```ignore
/// connector_api::register_connector!(MyConnector::default());
/// ```
#[macro_export]
macro_rules! register_connector {
    ($make:expr) => {
        $crate::__inventory::submit! {
            $crate::registry::Registration::new(|| ::std::sync::Arc::new($make))
        }
    };
}

/// A set of connectors with unique ids, sorted by id.
#[derive(Clone)]
pub struct Registry {
    connectors: BTreeMap<&'static str, Arc<dyn Connector>>,
}

impl Registry {
    /// Builds a registry, refusing duplicate ids so no connector silently shadows
    /// another.
    pub fn from_connectors(connectors: impl IntoIterator<Item = Arc<dyn Connector>>) -> Result<Self> {
        let mut map: BTreeMap<&'static str, Arc<dyn Connector>> = BTreeMap::new();
        let mut duplicates = Vec::new();
        for c in connectors {
            let id = c.metadata().id;
            if map.insert(id, c).is_some() {
                duplicates.push(id);
            }
        }
        if duplicates.is_empty() {
            Ok(Registry { connectors: map })
        } else {
            duplicates.sort_unstable();
            duplicates.dedup();
            Err(Error::new(
                ErrorKind::Internal,
                format!("more than one connector registered with id {}", duplicates.join(", ")),
            )
            .with_hint("Each connector crate must use its own id in its metadata"))
        }
    }

    /// Every connector, sorted by id.
    pub fn all(&self) -> Vec<Arc<dyn Connector>> {
        self.connectors.values().cloned().collect()
    }

    /// The connector with `id`; the error lists the known ids.
    pub fn find(&self, id: &str) -> Result<Arc<dyn Connector>> {
        self.connectors.get(id).cloned().ok_or_else(|| {
            let known: Vec<&str> = self.connectors.keys().copied().collect();
            Error::new(ErrorKind::Config, format!("no connector with id `{id}`"))
                .with_context("field", "connector")
                .with_hint(format!("Known connectors: {}", known.join(", ")))
        })
    }
}

/// The registry of every connector linked into this binary.
pub fn registry() -> Result<Registry> {
    Registry::from_connectors(inventory::iter::<Registration>.into_iter().map(Registration::connector))
}

/// Every linked connector, sorted by id.
pub fn all() -> Result<Vec<Arc<dyn Connector>>> {
    Ok(registry()?.all())
}

/// The linked connector with `id`; the error lists the known ids.
pub fn find(id: &str) -> Result<Arc<dyn Connector>> {
    registry()?.find(id)
}

//! `oauth_clients`: the tenant's OAuth clients (`/v1/oauth-clients`), the identities that
//! belong to no person: machine-to-machine integrations, embedded and web apps. Only
//! metadata; Qlik never returns a client secret after creation.

use super::{Access, StreamDef, Ty, col};
use crate::read::{Listing, MAX_LIMIT};

/// The `oauth_clients` stream.
pub const OAUTH_CLIENTS: StreamDef = StreamDef {
    name: "oauth_clients",
    description: "OAuth clients of the tenant (non-human identities): type, scopes, grant types, owner.",
    primary_key: &["client_id"],
    cursor: None,
    access: Access::AdminOnly,
    fields: &[
        col("client_id", "clientId", Ty::String, "Client id (not the secret)."),
        col("client_name", "clientName", Ty::String, "Client name."),
        col("description", "description", Ty::String, "Client description."),
        col(
            "app_type",
            "appType",
            Ty::String,
            "web (machine-to-machine clients are web clients), native, spa or anonymous-embed (other values kept as text).",
        ),
        col("owner_id", "ownerId", Ty::String, "User id of the client's owner."),
        col(
            "allowed_scopes",
            "allowedScopes",
            Ty::Array,
            "Scopes the client may ask for (user_default, admin_classic …).",
        ),
        col(
            "allowed_grant_types",
            "allowedGrantTypes",
            Ty::Array,
            "Grant types: client_credentials marks a machine-to-machine client.",
        ),
        col("redirect_uris", "redirectUris", Ty::Array, "Redirect URIs allowed for login."),
        col("allowed_origins", "allowedOrigins", Ty::Array, "Origins allowed to use the client."),
        col(
            "connection_config",
            "connectionConfig",
            Ty::Object,
            "Consent method (trusted, required) and status on this tenant.",
        ),
        col("disable_tag", "disableTag", Ty::String, "Set when the client is disabled."),
        col("created_at", "createdAt", Ty::DateTime, "When the client was created."),
        col("updated_at", "updatedAt", Ty::DateTime, "When the client last changed."),
        col("published_at", "publishedAt", Ty::DateTime, "When the client was published, if it is."),
        col("deleted_at", "deletedAt", Ty::DateTime, "When the client was deleted, if it is."),
        col("client_uri", "clientUri", Ty::String, "Homepage of the client."),
        col("logo_uri", "logoUri", Ty::String, "Logo of the client."),
    ],
    consumed: &["links"],
};

/// Lists every OAuth client.
pub const SOURCE: Listing = Listing {
    stream: &[&OAUTH_CLIENTS],
    path: "/api/v1/oauth-clients",
    max_limit: Some(MAX_LIMIT),
    query: &[],
    record: None,
};

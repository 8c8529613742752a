//! Every hint the connector shows an operator, in one place.
//!
//! The operator's manual (`docs.md`) carries each of these texts in its troubleshooting
//! table, and a test checks that it still does, so the manual cannot drift from what
//! the connector prints.

/// A key Qlik rejects with 401: how to get a working one today, on older tenants, and
/// why keys from before 26 January 2026 may have stopped working.
pub const KEY_REJECTED: &str = "Qlik Cloud rejected the API key. Generate a new one: the key's owner needs the \"Manage API keys\" permission (a custom role that grants it, or User Default), then Profile settings > API keys > Generate new key, and put the new key in api_key. Keys that relied on the Developer role, which Qlik removed on 26 January 2026, now get 401 and must be regenerated this way. On tenants still using the older process, a Tenant Admin enables API keys (Management Console > Settings > \"Enable API keys\") and gives the user the Developer role.";

/// A key whose `exp` claim is in the past.
pub const KEY_EXPIRED: &str = "Generate a new key under Profile settings > API keys > Generate new key (the owner needs the \"Manage API keys\" permission), put it in api_key, and rotate it before its expiry date next time. On tenants still using the older process, keys are generated from the avatar menu > API keys by a user with the Developer role.";

/// A key that expires within 14 days.
pub const KEY_EXPIRING_SOON: &str = "Rotate the key before it expires: generate a new one under Profile settings > API keys > Generate new key, put it in api_key, then delete the old one.";

/// A key that is not a JWT, so its expiry cannot be read before the first request.
pub const KEY_NOT_A_JWT: &str = "Qlik Cloud API keys are JWTs (three dot-separated parts starting with eyJ). Copy the whole key shown once under Profile settings > API keys > Generate new key.";

/// 403 on a licence endpoint: the key's owner is not a Tenant Admin.
pub const LICENCE_NEEDS_TENANT_ADMIN: &str = "Licence data needs a Tenant Admin behind the key: generate the key as a user with the Tenant Admin role (the key acts with its creator's rights; the creator also needs the \"Manage API keys\" permission, via a custom role or User Default, and generates it under Profile settings > API keys > Generate new key), or leave the licence streams out with `streams`. On tenants still using the older process, that Tenant Admin also needs the Developer role.";

/// 403 on any other endpoint.
pub const PERMISSION_DENIED: &str = "The key's owner lacks a permission this stream needs; keys act with their creator's rights. Generate the key as a Tenant Admin (Profile settings > API keys > Generate new key, with the \"Manage API keys\" permission from a custom role or User Default), or leave the stream out with `streams`. On tenants still using the older process, the owner also needs the Developer role.";

/// 404 on `users/me` or `tenants/me`: the URL names no Qlik Cloud tenant.
pub const WRONG_TENANT_URL: &str = "Check tenant_url: it must be the address you open Qlik Cloud at, e.g. https://acme.eu.qlikcloud.com (tenant name and region), or your custom domain.";

/// The tenant's host cannot be reached or its TLS certificate is not trusted.
pub const TENANT_UNREACHABLE: &str = "Check tenant_url, DNS and any proxy or firewall between this host and Qlik Cloud (HTTPS, port 443). A TLS error means the certificate is not trusted: make sure no proxy intercepts TLS, or that its certificate authority is trusted.";

/// Qlik kept throttling us after every retry.
pub const RATE_LIMITED: &str = "Qlik Cloud throttled the requests. Qlik's Tier 1 limit is 1000 requests per minute per user, per tenant, over 5 minutes: every key of the key's owner, and every integration running as that user, shares it. Lower requests_per_minute or max_concurrency, or give this connector a key of its own user, and run again later.";

/// 5xx, timeouts or cut-off responses after every retry.
pub const SOURCE_UNAVAILABLE: &str = "Qlik Cloud kept failing or timing out. Check https://status.qlik.com, raise request_timeout if responses are slow, and run again later; data already checkpointed is kept.";

/// Qlik answered something the connector cannot use (a paging loop, a bad link).
pub const SOURCE_PROTOCOL: &str = "Qlik Cloud returned a response the connector cannot use. Run again; if it repeats, report it with the endpoint named in the error.";

/// The token endpoint refused the OAuth client's credentials.
pub const OAUTH_CLIENT_REJECTED: &str = "Qlik Cloud refused the OAuth client's credentials. In the Administration activity center > OAuth, check that the client exists, is a machine-to-machine (web, client credentials) client with consent trusted, and that client_id and client_secret are this client's; a client secret is shown once when created, so generate a new one if in doubt.";

/// Qlik announced a deprecation (or a sunset) in its response headers.
pub const API_DEPRECATED: &str = "What the connector reads may stop working on or after the sunset date, whatever api_version says: upgrade connector-host to a release that no longer relies on it before then, and read Qlik's changelog (https://qlik.dev/changelog) for what changes.";

/// `api_version` names no Qlik API release.
pub const API_VERSION_INVALID: &str = "Leave api_version out to send the release this connector is tested against, or name a release listed in Qlik's changelog (https://qlik.dev/changelog), such as 2026-11.";

/// Every hint above, for the documentation test.
pub const ALL: &[&str] = &[
    OAUTH_CLIENT_REJECTED,
    KEY_REJECTED,
    KEY_EXPIRED,
    KEY_EXPIRING_SOON,
    KEY_NOT_A_JWT,
    LICENCE_NEEDS_TENANT_ADMIN,
    PERMISSION_DENIED,
    WRONG_TENANT_URL,
    TENANT_UNREACHABLE,
    RATE_LIMITED,
    SOURCE_UNAVAILABLE,
    SOURCE_PROTOCOL,
    API_DEPRECATED,
    API_VERSION_INVALID,
];

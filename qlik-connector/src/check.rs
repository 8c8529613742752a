//! `check`: named steps from the config to every stream's endpoint.
//!
//! Steps stop at the first failure (later ones are reported as skipped) so the operator
//! sees the one thing to fix: URL, then the sign-in method (API key or OAuth client),
//! key expiry (read from the key itself, before anything is sent), then reachability
//! (without the key), then the key (or the OAuth client's first token), the tenant, the
//! kind of subscription it runs on, and finally a probe of every source the selected
//! streams read, asked as a read asks but for one item. A probe that is forbidden is a
//! warning naming the streams lost and the fix, since the other streams still work.

use std::sync::Arc;
use std::time::Duration;

use connector_api::http::RetryPolicy;
use connector_api::read;
use connector_api::{CheckReport, CheckStatus, ErrorKind, Result};
use serde_json::Value;
use time::OffsetDateTime;

use crate::auth::{self, KeyExpiry};
use crate::client::{QlikClient, SignIn};
use crate::config::{QlikConfig, Settings};
use crate::read::Tenant;
use crate::remediation;
use crate::streams::SOURCES;

/// Step names, in order.
pub const STEP_URL: &str = "tenant URL valid";
/// Which way the connector signs in: an API key or an OAuth client.
pub const STEP_AUTH: &str = "auth method";
/// Reads the key's expiry from its claims.
pub const STEP_EXPIRY: &str = "key not expired";
/// Reaches the tenant over HTTPS without the key.
pub const STEP_REACH: &str = "tenant reachable";
/// `users/me` with the key or token.
pub const STEP_KEY: &str = "key accepted";
/// Whether the key's user is a Tenant Admin, from the `users/me` answer.
pub const STEP_RIGHTS: &str = "key's rights";
/// `tenants/me` with the key.
pub const STEP_TENANT: &str = "tenant identified";
/// Whether the tenant's subscription is user-based or capacity-based, read from
/// `licenses/overview`.
pub const STEP_SUBSCRIPTION: &str = "subscription kind";
/// Prefix of the per-source probe steps, followed by the source's selected streams.
pub const STEP_PROBE: &str = "stream access";

/// Probes and checks fail fast rather than retry for minutes.
fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(2),
        max_elapsed: Duration::from_secs(20),
    }
}

/// A note when `reached`, the host `tenant_url` names, is one of the tenant's aliases rather
/// than its own hostname, the first of `hostnames` (the `Tenant` definition: "The first record
/// maps to the display name and the subsequent entries are aliases",
/// https://qlik.dev/apis/rest/tenants). The hub tells tenants apart by that host, so one
/// tenant under two names in two configs would be counted twice, seats and all. Nothing when
/// the host is not listed (a proxy in between, say): then there is nothing to compare.
fn alias_note(tenant: &Value, reached: &str) -> Option<String> {
    let hostnames: Vec<&str> =
        tenant.get("hostnames")?.as_array()?.iter().filter_map(Value::as_str).collect();
    let own = *hostnames.first()?;
    let is_alias = hostnames[1..].iter().any(|h| h.eq_ignore_ascii_case(reached));
    (is_alias && !own.eq_ignore_ascii_case(reached)).then(|| {
        format!(
            ", reached through its alias {reached} (its own hostname is {own}).\nHint: The hub tells tenants apart by the host in tenant_url: give this tenant the same tenant_url in every config, or its rows land twice, as two tenants."
        )
    })
}

/// Runs every step. `Err` only for a config that cannot be parsed at all.
pub async fn run(config: &Value) -> Result<CheckReport> {
    let raw: QlikConfig = connector_api::config::parse(config)?;
    let mut report = CheckReport::default();
    let remaining = [
        STEP_AUTH,
        STEP_EXPIRY,
        STEP_REACH,
        STEP_KEY,
        STEP_RIGHTS,
        STEP_TENANT,
        STEP_SUBSCRIPTION,
        STEP_PROBE,
    ];

    let settings = match Settings::from_config(raw) {
        Ok(s) => {
            report.push(
                STEP_URL,
                CheckStatus::Ok,
                format!("tenant at {}", s.tenant.as_str().trim_end_matches('/')),
            );
            s
        }
        Err(err) if err.context_value("field") == Some("tenant_url") => {
            report.fail(STEP_URL, &err);
            skip(&mut report, &remaining);
            return Ok(report);
        }
        Err(err) => return Err(err),
    };
    let sign_in = SignIn::from_settings(&settings)?;
    report.push(STEP_AUTH, CheckStatus::Ok, settings.auth.describe());
    let oauth = matches!(sign_in, SignIn::OAuth(_));

    match sign_in.key_claims().map(|c| c.expiry(OffsetDateTime::now_utc())) {
        Some(KeyExpiry::Expired(at)) => {
            report.fail(STEP_EXPIRY, &auth::expired_error(at));
            skip(&mut report, &remaining[2..]);
            return Ok(report);
        }
        Some(KeyExpiry::ExpiresSoon(at)) => report.push(
            STEP_EXPIRY,
            CheckStatus::Warning,
            format!(
                "The API key expires on {}, within 14 days.\nHint: {}",
                auth::show(at),
                remediation::KEY_EXPIRING_SOON
            ),
        ),
        Some(KeyExpiry::Valid(at)) => {
            report.push(STEP_EXPIRY, CheckStatus::Ok, format!("expires on {}", auth::show(at)))
        }
        Some(KeyExpiry::Unknown) => report.push(STEP_EXPIRY, CheckStatus::Ok, "the key states no expiry"),
        None if oauth => report.push(
            STEP_EXPIRY,
            CheckStatus::Ok,
            "an OAuth client has no key to expire: the connector fetches short-lived access tokens and renews them",
        ),
        None => report.push(
            STEP_EXPIRY,
            CheckStatus::Warning,
            format!(
                "The API key is not a JWT, so its expiry cannot be read.\nHint: {}",
                remediation::KEY_NOT_A_JWT
            ),
        ),
    }

    let claimed_tenant = sign_in.key_claims().and_then(|c| c.tenant_id.clone());
    let client = Arc::new(QlikClient::new(&settings, sign_in)?.with_policy(quick_policy()));
    match client.reach().await {
        Ok(status) => report.push(
            STEP_REACH,
            CheckStatus::Ok,
            format!(
                "{} answered over {} (HTTP {status} to a request sent without the key)",
                settings.tenant.host_str().unwrap_or("the tenant"),
                if settings.tenant.scheme() == "https" { "TLS" } else { "plain HTTP (loopback)" }
            ),
        ),
        Err(err) => {
            report.fail(STEP_REACH, &err);
            skip(&mut report, &remaining[3..]);
            return Ok(report);
        }
    }

    let mut events = Vec::new();
    match client.get_json(&client.url("/api/v1/users/me"), &mut events).await {
        Ok((_, me)) => {
            let who =
                me.get("name").or_else(|| me.get("id")).and_then(Value::as_str).unwrap_or("an unnamed user");
            report.push(STEP_KEY, CheckStatus::Ok, format!("the key acts as {who}"));
            let (status, message) = rights(&me, who, &settings.streams);
            report.push(STEP_RIGHTS, status, message);
        }
        Err(err) => {
            report.fail(STEP_KEY, &err);
            skip(&mut report, &remaining[4..]);
            return Ok(report);
        }
    }

    let tenant_id = match client.get_json(&client.url("/api/v1/tenants/me"), &mut events).await {
        Ok((_, tenant)) => {
            let id = tenant.get("id").and_then(Value::as_str).unwrap_or("");
            let name = tenant.get("name").and_then(Value::as_str).unwrap_or(id);
            let claimed = claimed_tenant.as_deref();
            if claimed.is_some_and(|c| !id.is_empty() && c != id) {
                report.push(
                    STEP_TENANT,
                    CheckStatus::Warning,
                    format!(
                        "tenant {name} ({id}), but the key was issued for another tenant.\nHint: {}",
                        remediation::WRONG_TENANT_URL
                    ),
                );
            } else {
                let alias = alias_note(&tenant, &settings.tenant_host()).unwrap_or_default();
                report.push(STEP_TENANT, CheckStatus::Ok, format!("tenant {name} ({id}){alias}"));
            }
            id.to_string()
        }
        Err(err) => {
            report.fail(STEP_TENANT, &err);
            skip(&mut report, &remaining[6..]);
            return Ok(report);
        }
    };

    match client.get_json(&client.url("/api/v1/licenses/overview"), &mut events).await {
        Ok((_, overview)) => {
            report.push(STEP_SUBSCRIPTION, CheckStatus::Ok, subscription(&overview).describe())
        }
        Err(err) if err.kind() == ErrorKind::Permission => report.push(
            STEP_SUBSCRIPTION,
            CheckStatus::Warning,
            format!(
                "Unknown: the key cannot read licenses/overview, where the kind shows. {err}\nHint: {}",
                remediation::LICENCE_NEEDS_TENANT_ADMIN
            ),
        ),
        Err(err) => report.fail(STEP_SUBSCRIPTION, &err),
    }

    probe_sources(client, settings, tenant_id, &mut report).await;
    Ok(report)
}

/// How Qlik sells the tenant's analytics
/// (https://help.qlik.com/en-US/cloud-services/Subsystems/Hub/Content/Sense_Hub/Admin/comparing-subscriptions.htm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// Qlik Sense Enterprise SaaS or Business: Professional and Analyzer seats and Analyzer
    /// capacity minutes, which the licence streams describe.
    UserBased,
    /// The Standard, Premium or Enterprise edition of Qlik Cloud Analytics, sold since 2024:
    /// metered on data capacity, with Full and Basic users.
    CapacityBased,
    /// Neither sign was found.
    Unknown,
}

/// A tenant's subscription kind and the evidence it was inferred from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The kind.
    pub kind: SubscriptionKind,
    /// What in `licenses/overview` shows it.
    pub evidence: String,
}

impl Subscription {
    /// `capacity-based (inferred from …)`: Qlik's API states no subscription kind, so the
    /// report always says what it was inferred from.
    pub fn describe(&self) -> String {
        let kind = match self.kind {
            SubscriptionKind::UserBased => "user-based",
            SubscriptionKind::CapacityBased => "capacity-based",
            SubscriptionKind::Unknown => "not recognised",
        };
        format!(
            "{kind} (inferred from {}; Qlik's API names no subscription kind). The manual says which streams apply to each kind.",
            self.evidence
        )
    }
}

/// Allotments of a user-based subscription, as Qlik's definitions enumerate them
/// (https://qlik.dev/apis/rest/licenses, `licenseOverview.allotments[].name`).
const USER_BASED_ALLOTMENTS: [&str; 3] = ["professional", "analyzer", "analyzer_time"];

/// The kind of subscription a `licenses/overview` answer shows. Qlik's API has no field
/// for it (neither `licenses/overview`, `licenses/status`, `tenants` nor `quotas`), so this
/// reads the two signs Qlik's own monitoring-app installers use
/// (github.com/qlik-oss/qlik-cloud-monitoring-apps): a `fullUser` allotment
/// (`automations/multipleTenantInstaller.json`) or a `product` containing `QLIK SMT`
/// (`automations/singleTenantDeployer.json`) mean capacity-based. Without either, the
/// Professional, Analyzer and Analyzer-capacity allotments mean user-based.
pub fn subscription(overview: &Value) -> Subscription {
    let allotments: Vec<&str> = overview
        .get("allotments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|a| a.get("name").and_then(Value::as_str))
        .collect();
    let product = overview.get("product").and_then(Value::as_str).unwrap_or_default();
    let mut capacity = Vec::new();
    if allotments.contains(&"fullUser") {
        capacity.push("the fullUser allotment in licenses/overview".to_string());
    }
    if product.to_ascii_uppercase().contains("QLIK SMT") {
        capacity.push(format!("the product \"{product}\" in licenses/overview"));
    }
    if !capacity.is_empty() {
        return Subscription { kind: SubscriptionKind::CapacityBased, evidence: capacity.join(" and ") };
    }
    let seats: Vec<&str> = allotments.iter().copied().filter(|a| USER_BASED_ALLOTMENTS.contains(a)).collect();
    if !seats.is_empty() {
        return Subscription {
            kind: SubscriptionKind::UserBased,
            evidence: format!(
                "the {} allotments in licenses/overview, and no fullUser allotment",
                seats.join(", ")
            ),
        };
    }
    Subscription {
        kind: SubscriptionKind::Unknown,
        evidence: format!(
            "licenses/overview, whose allotments ({}) and product (\"{product}\") show neither kind",
            if allotments.is_empty() { "none".to_string() } else { allotments.join(", ") }
        ),
    }
}

/// Streams a key without Tenant Admin rights may not read at all.
const REFUSED_TO_NON_ADMINS: [&str; 9] = [
    "license_overview",
    "license_allotments",
    "license_assignments",
    "license_consumption",
    "license_settings",
    "api_key_policy",
    "oauth_clients",
    "user_sessions",
    "consumption_executions",
];

/// Streams a key without Tenant Admin rights reads only in part, and what it misses.
const PARTIAL_TO_NON_ADMINS: [(&str, &str); 5] = [
    ("tenant", "licence columns null"),
    ("spaces", "only the spaces the user can access"),
    ("space_assignments", "only those of the spaces the user can access"),
    ("apps", "only the apps the user can access"),
    ("api_keys", "only the user's own keys"),
];

/// Whether the key's user (`me`, the `users/me` answer) is a Tenant Admin; if not, a
/// warning naming the selected streams that will be refused and those that will be
/// partial. Qlik answers a non-admin with less, not with an error, on the partial ones.
fn rights(me: &Value, who: &str, streams: &[&'static str]) -> (CheckStatus, String) {
    let names = |field: &str, key: Option<&str>| -> Vec<String> {
        let items = me.get(field).and_then(Value::as_array).into_iter().flatten();
        items
            .filter_map(|r| key.map_or(Some(r), |k| r.get(k)))
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    };
    let roles: Vec<String> =
        names("assignedRoles", Some("name")).into_iter().chain(names("roles", None)).collect();
    if roles.iter().any(|r| r == "TenantAdmin") {
        return (CheckStatus::Ok, format!("{who} is a Tenant Admin: every stream reads the whole tenant"));
    }
    let refused: Vec<&str> = REFUSED_TO_NON_ADMINS.into_iter().filter(|s| streams.contains(s)).collect();
    let partial: Vec<String> = PARTIAL_TO_NON_ADMINS
        .into_iter()
        .filter(|(s, _)| streams.contains(s))
        .map(|(s, what)| format!("{s} ({what})"))
        .collect();
    let mut message = format!("{who} is not a Tenant Admin, and the key acts with that user's rights.");
    if !refused.is_empty() {
        message.push_str(&format!(" Refused: {}.", refused.join(", ")));
    }
    if !partial.is_empty() {
        message.push_str(&format!(" Partial: {}.", partial.join(", ")));
    }
    message.push_str(&format!("\nHint: {}", remediation::LICENCE_NEEDS_TENANT_ADMIN));
    (CheckStatus::Warning, message)
}

fn skip(report: &mut CheckReport, steps: &[&str]) {
    for s in steps {
        report.push(*s, CheckStatus::Skipped, "skipped: an earlier step failed");
    }
}

/// Probes every source a selected stream reads, the way a read would ask: its plan and the
/// first page of its first chain ([`connector_api::read::probe`]), one item a page, one
/// chain at a time. A forbidden source is a warning naming the streams lost; they are the
/// only ones that will fail.
async fn probe_sources(
    client: Arc<QlikClient>,
    settings: Settings,
    tenant_id: String,
    report: &mut CheckReport,
) {
    let tenant =
        Arc::new(Tenant::new(client, Settings { page_size: Some(1), max_concurrency: 1, ..settings }));
    if !tenant_id.is_empty() {
        let _ = tenant.id.set(tenant_id);
    }
    for source in SOURCES {
        let streams: Vec<&str> =
            source.streams().iter().map(|s| s.name).filter(|s| tenant.settings.streams.contains(s)).collect();
        if streams.is_empty() {
            continue;
        }
        let name = format!("{STEP_PROBE}: {}", streams.join(", "));
        match read::probe(tenant.clone(), *source).await {
            Ok(()) => report.push(name, CheckStatus::Ok, "readable"),
            Err(err) if err.kind() == ErrorKind::Permission => report.push(
                name,
                CheckStatus::Warning,
                format!("This key cannot read {}; those streams will fail. {err}", streams.join(", ")),
            ),
            Err(err) => report.fail(name, &err),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The `product` sign alone, as Qlik's single-tenant deployer reads it; the simulator
    /// signals a capacity tenant by its allotments only (its real product string is not
    /// published).
    #[test]
    fn a_qlik_smt_product_means_capacity_based() {
        let overview = json!({"product": "Qlik SMT Analytics", "allotments": [{"name": "analyzer_time"}]});
        let found = subscription(&overview);
        assert_eq!(found.kind, SubscriptionKind::CapacityBased);
        assert!(found.evidence.contains("Qlik SMT Analytics"), "{}", found.evidence);
    }

    #[test]
    fn no_known_allotment_is_reported_as_not_recognised() {
        let overview = json!({"product": "Something new", "allotments": [{"name": "tokens"}]});
        let found = subscription(&overview);
        assert_eq!(found.kind, SubscriptionKind::Unknown);
        assert!(found.describe().starts_with("not recognised"), "{}", found.describe());
        assert!(found.evidence.contains("tokens") && found.evidence.contains("Something new"));
    }
}

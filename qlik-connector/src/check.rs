//! `check`: named steps from the config to every stream's endpoint.
//!
//! The steps are a table ([`STEPS`]), run in order: the URL, the sign-in method (API key or
//! OAuth client), key expiry (read from the key itself, before anything is sent),
//! reachability (without the key), the key (or the OAuth client's first token), its rights,
//! the tenant, the kind of subscription it runs on, a probe of every source the selected
//! streams read, asked as a read asks but for one item, and last the API version every
//! request named, with any deprecation Qlik announced in its answers. A step that fails
//! stops the check: every step after it in the table is reported as skipped, so the operator
//! sees the one thing to fix. Probes that are forbidden are warnings, grouped by their fix,
//! naming the streams lost, since the other streams still work.

use std::sync::Arc;
use std::time::Duration;

use connector_api::http::RetryPolicy;
use connector_api::read;
use connector_api::{Access, CheckReport, CheckStatus, Error, ErrorKind, Result};
use futures::future::BoxFuture;
use serde_json::Value;
use time::OffsetDateTime;

use crate::api_version;
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
/// The API release every request named, and the deprecations Qlik announced in return.
pub const STEP_VERSION: &str = "API version";

/// What the hub needs of a tenant reached through an alias.
const ALIAS_HINT: &str = "The hub tells tenants apart by the host in tenant_url: give this tenant the same tenant_url in every config, or its rows land twice, as two tenants.";

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
    (is_alias && !own.eq_ignore_ascii_case(reached))
        .then(|| format!(", reached through its alias {reached} (its own hostname is {own})"))
}

/// Whether the steps after one may run.
enum Next {
    Continue,
    /// The step failed: the ones after it cannot tell anything.
    Stop,
}

/// What the steps share: the tenant as the probes read it (one item a page, one chain at a
/// time), its client, what the key claims, and what earlier steps found.
struct Checking {
    tenant: Arc<Tenant>,
    client: Arc<QlikClient>,
    expiry: Option<KeyExpiry>,
    oauth: bool,
    claimed_tenant: Option<String>,
    /// The `users/me` answer.
    me: Value,
    report: CheckReport,
}

/// One step of the table: its name (reported as skipped when an earlier step failed) and
/// what it does. A step adds its own lines (the probes one per group of streams).
struct Step {
    name: &'static str,
    run: for<'a> fn(&'a mut Checking) -> BoxFuture<'a, Next>,
}

/// Every step after the URL, in order.
const STEPS: [Step; 9] = [
    Step { name: STEP_AUTH, run: |c| Box::pin(auth_method(c)) },
    Step { name: STEP_EXPIRY, run: |c| Box::pin(expiry(c)) },
    Step { name: STEP_REACH, run: |c| Box::pin(reach(c)) },
    Step { name: STEP_KEY, run: |c| Box::pin(key(c)) },
    Step { name: STEP_RIGHTS, run: |c| Box::pin(key_rights(c)) },
    Step { name: STEP_TENANT, run: |c| Box::pin(tenant(c)) },
    Step { name: STEP_SUBSCRIPTION, run: |c| Box::pin(subscription_kind(c)) },
    Step { name: STEP_PROBE, run: |c| Box::pin(probe_sources(c)) },
    Step { name: STEP_VERSION, run: |c| Box::pin(version(c)) },
];

/// Runs every step. `Err` only for a config that cannot be parsed at all.
pub async fn run(config: &Value) -> Result<CheckReport> {
    let raw: QlikConfig = connector_api::config::parse(config)?;
    let mut report = CheckReport::default();
    let settings = match Settings::from_config(raw) {
        Ok(s) => s,
        Err(err) if err.context_value("field") == Some("tenant_url") => {
            report.fail(STEP_URL, &err);
            skip(&mut report, &STEPS);
            return Ok(report);
        }
        Err(err) => return Err(err),
    };
    report.push(
        STEP_URL,
        CheckStatus::Ok,
        format!("tenant at {}", settings.tenant.as_str().trim_end_matches('/')),
    );
    let sign_in = SignIn::from_settings(&settings)?;
    let claims = sign_in.key_claims();
    let expiry = claims.map(|c| c.expiry(OffsetDateTime::now_utc()));
    let claimed_tenant = claims.and_then(|c| c.tenant_id.clone());
    let oauth = matches!(sign_in, SignIn::OAuth(_));
    let client = Arc::new(QlikClient::new(&settings, sign_in)?.with_policy(quick_policy()));
    let probing = Settings { page_size: Some(1), max_concurrency: 1, ..settings };
    let mut checking = Checking {
        tenant: Arc::new(Tenant::new(client.clone(), probing)),
        client,
        expiry,
        oauth,
        claimed_tenant,
        me: Value::Null,
        report,
    };
    for (i, step) in STEPS.iter().enumerate() {
        if let Next::Stop = (step.run)(&mut checking).await {
            skip(&mut checking.report, &STEPS[i + 1..]);
            break;
        }
    }
    Ok(checking.report)
}

fn skip(report: &mut CheckReport, steps: &[Step]) {
    for s in steps {
        report.push(s.name, CheckStatus::Skipped, "skipped: an earlier step failed");
    }
}

/// `error` as a failed step that stops the check.
fn stop(c: &mut Checking, name: &str, error: &Error) -> Next {
    c.report.fail(name, error);
    Next::Stop
}

async fn auth_method(c: &mut Checking) -> Next {
    c.report.push(STEP_AUTH, CheckStatus::Ok, c.tenant.settings.auth.describe());
    Next::Continue
}

async fn expiry(c: &mut Checking) -> Next {
    let report = &mut c.report;
    match c.expiry.clone() {
        Some(KeyExpiry::Expired(at)) => return stop(c, STEP_EXPIRY, &auth::expired_error(at)),
        Some(KeyExpiry::ExpiresSoon(at)) => report.push_with_hint(
            STEP_EXPIRY,
            CheckStatus::Warning,
            format!("The API key expires on {}, within 14 days.", auth::show(at)),
            remediation::KEY_EXPIRING_SOON,
        ),
        Some(KeyExpiry::Valid(at)) => {
            report.push(STEP_EXPIRY, CheckStatus::Ok, format!("expires on {}", auth::show(at)))
        }
        Some(KeyExpiry::Unknown) => report.push(STEP_EXPIRY, CheckStatus::Ok, "the key states no expiry"),
        None if c.oauth => report.push(
            STEP_EXPIRY,
            CheckStatus::Ok,
            "an OAuth client has no key to expire: the connector fetches short-lived access tokens and renews them",
        ),
        None => report.push_with_hint(
            STEP_EXPIRY,
            CheckStatus::Warning,
            "The API key is not a JWT, so its expiry cannot be read.",
            remediation::KEY_NOT_A_JWT,
        ),
    }
    Next::Continue
}

async fn reach(c: &mut Checking) -> Next {
    match c.client.reach().await {
        Ok(status) => {
            let tenant = &c.tenant.settings.tenant;
            c.report.push(
                STEP_REACH,
                CheckStatus::Ok,
                format!(
                    "{} answered over {} (HTTP {status} to a request sent without the key)",
                    tenant.host_str().unwrap_or("the tenant"),
                    if tenant.scheme() == "https" { "TLS" } else { "plain HTTP (loopback)" }
                ),
            );
            Next::Continue
        }
        Err(err) => stop(c, STEP_REACH, &err),
    }
}

async fn key(c: &mut Checking) -> Next {
    let mut events = Vec::new();
    match c.client.get_json(&c.client.url("/api/v1/users/me"), &mut events).await {
        Ok((_, me)) => {
            c.report.push(STEP_KEY, CheckStatus::Ok, format!("the key acts as {}", who(&me)));
            c.me = me;
            Next::Continue
        }
        Err(err) => stop(c, STEP_KEY, &err),
    }
}

/// The name (or id) of the key's user in the `users/me` answer.
fn who(me: &Value) -> &str {
    me.get("name").or_else(|| me.get("id")).and_then(Value::as_str).unwrap_or("an unnamed user")
}

async fn key_rights(c: &mut Checking) -> Next {
    match rights(&c.me, who(&c.me), &c.tenant.settings.streams) {
        None => c.report.push(
            STEP_RIGHTS,
            CheckStatus::Ok,
            format!("{} is a Tenant Admin: every stream reads the whole tenant", who(&c.me)),
        ),
        Some(message) => c.report.push_with_hint(
            STEP_RIGHTS,
            CheckStatus::Warning,
            message,
            remediation::LICENCE_NEEDS_TENANT_ADMIN,
        ),
    }
    Next::Continue
}

async fn tenant(c: &mut Checking) -> Next {
    let mut events = Vec::new();
    let tenant = match c.client.get_json(&c.client.url("/api/v1/tenants/me"), &mut events).await {
        Ok((_, tenant)) => tenant,
        Err(err) => return stop(c, STEP_TENANT, &err),
    };
    let id = tenant.get("id").and_then(Value::as_str).unwrap_or("");
    let name = tenant.get("name").and_then(Value::as_str).unwrap_or(id);
    if c.claimed_tenant.as_deref().is_some_and(|claimed| !id.is_empty() && claimed != id) {
        c.report.push_with_hint(
            STEP_TENANT,
            CheckStatus::Warning,
            format!("tenant {name} ({id}), but the key was issued for another tenant."),
            remediation::WRONG_TENANT_URL,
        );
    } else if let Some(alias) = alias_note(&tenant, &c.tenant.settings.tenant_host()) {
        c.report.push_with_hint(
            STEP_TENANT,
            CheckStatus::Ok,
            format!("tenant {name} ({id}){alias}"),
            ALIAS_HINT,
        );
    } else {
        c.report.push(STEP_TENANT, CheckStatus::Ok, format!("tenant {name} ({id})"));
    }
    if !id.is_empty() {
        let _ = c.tenant.id.set(id.to_string());
    }
    Next::Continue
}

async fn subscription_kind(c: &mut Checking) -> Next {
    let mut events = Vec::new();
    match c.client.get_json(&c.client.url("/api/v1/licenses/overview"), &mut events).await {
        Ok((_, overview)) => {
            c.report.push(STEP_SUBSCRIPTION, CheckStatus::Ok, subscription(&overview).describe())
        }
        Err(err) if err.kind() == ErrorKind::Permission => c.report.push_with_hint(
            STEP_SUBSCRIPTION,
            CheckStatus::Warning,
            format!(
                "Unknown: the key cannot read licenses/overview, where the kind shows ({}).",
                refusal(&err)
            ),
            remediation::LICENCE_NEEDS_TENANT_ADMIN,
        ),
        Err(err) => c.report.fail(STEP_SUBSCRIPTION, &err),
    }
    Next::Continue
}

/// How a source refused: `HTTP 403`, or the error's kind.
fn refusal(err: &Error) -> String {
    err.http_failure().map_or_else(|| err.kind().to_string(), |f| f.to_string())
}

/// The release every request named, and each deprecation Qlik announced in the answers to
/// this check's requests, with the dates Qlik gave.
async fn version(c: &mut Checking) -> Next {
    let notices = c.client.notices();
    let sent = match notices.version() {
        v if v == api_version::API_VERSION => v.to_string(),
        v => format!("{v} (api_version)"),
    };
    let announced = notices.warnings();
    if announced.is_empty() {
        c.report.push(
            STEP_VERSION,
            CheckStatus::Ok,
            format!("every request named {sent}; Qlik announced no deprecation"),
        );
    } else {
        c.report.push_with_hint(
            STEP_VERSION,
            CheckStatus::Warning,
            format!("every request named {sent}. {}", announced.join(" ")),
            remediation::API_DEPRECATED,
        );
    }
    Next::Continue
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

/// `None` when the key's user (`me`, the `users/me` answer) is a Tenant Admin; otherwise a
/// warning naming the selected streams that will be refused and those that will be
/// partial. Qlik answers a non-admin with less, not with an error, on the partial ones.
fn rights(me: &Value, who: &str, streams: &[&'static str]) -> Option<String> {
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
        return None;
    }
    let selected = crate::streams::all().filter(|d| streams.contains(&d.name));
    let (mut refused, mut partial) = (Vec::new(), Vec::new());
    for def in selected {
        match def.access {
            Access::AdminOnly => refused.push(def.name.to_string()),
            Access::Partial(what) => partial.push(format!("{} ({what})", def.name)),
            Access::Everyone => {}
        }
    }
    let mut message = format!("{who} is not a Tenant Admin, and the key acts with that user's rights.");
    if !refused.is_empty() {
        message.push_str(&format!(" Refused: {}.", refused.join(", ")));
    }
    if !partial.is_empty() {
        message.push_str(&format!(" Partial: {}.", partial.join(", ")));
    }
    Some(message)
}

/// Probes every source a selected stream reads, the way a read would ask: its plan and the
/// first page of its first chain ([`connector_api::read::probe`]), one item a page, one
/// chain at a time. The readable streams are one line; the refused ones one line per fix
/// (every licence endpoint refusing a non-admin key is one cause), since they are the only
/// ones that will fail; any other failure is a line of its own.
async fn probe_sources(c: &mut Checking) -> Next {
    let mut readable: Vec<&str> = Vec::new();
    let mut refused: Vec<(Vec<&str>, String, Option<String>)> = Vec::new();
    for source in SOURCES {
        let streams: Vec<&str> = source
            .streams()
            .iter()
            .map(|s| s.name)
            .filter(|s| c.tenant.settings.streams.contains(s))
            .collect();
        if streams.is_empty() {
            continue;
        }
        match read::probe(c.tenant.clone(), *source).await {
            Ok(()) => readable.extend(streams),
            Err(err) if err.kind() == ErrorKind::Permission => {
                let (reason, hint) = (refusal(&err), err.hint().map(str::to_string));
                match refused.iter_mut().find(|(_, r, h)| *r == reason && *h == hint) {
                    Some((group, ..)) => group.extend(streams),
                    None => refused.push((streams, reason, hint)),
                }
            }
            Err(err) => c.report.fail(format!("{STEP_PROBE}: {}", streams.join(", ")), &err),
        }
    }
    if !readable.is_empty() {
        c.report.push(format!("{STEP_PROBE}: {}", readable.join(", ")), CheckStatus::Ok, "readable");
    }
    for (streams, reason, hint) in refused {
        let name = format!("{STEP_PROBE}: {}", streams.join(", "));
        let message = format!("refused ({reason}): these streams will fail");
        match hint {
            Some(hint) => c.report.push_with_hint(name, CheckStatus::Warning, message, hint),
            None => c.report.push(name, CheckStatus::Warning, message),
        }
    }
    Next::Continue
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

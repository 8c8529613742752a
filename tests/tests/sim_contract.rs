//! The contract test: every endpoint's responses, over several pages and in every fault-free
//! mode, validate against the JSON Schemas of Qlik's published OpenAPI definitions, loaded at
//! test time. A response that strays from Qlik's shape fails here.

mod sim_common;

use std::collections::{BTreeSet, HashMap};

use jsonschema::{Draft, Validator};
use serde_json::{Value, json};
use sim_common::{client, get, s};
use tests::qlik_sim::{SimConfig, Simulator, Subscription};

/// Where Qlik's definitions sit: the parts the tests use, vendored beside this crate (see
/// `tests/qlik-api/README.md`), unless `QLIK_API_DEFINITIONS` names another copy (the whole
/// document, say).
const DEFINITIONS: &str = "qlik-api/qlik-cloud-rest-openapi-2025-01.subset.json";

/// Validators for named schemas of the definitions.
struct Contract {
    doc: Value,
    validators: HashMap<String, Validator>,
}

impl Contract {
    fn load() -> Contract {
        let path = std::env::var_os("QLIK_API_DEFINITIONS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFINITIONS));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "reading Qlik's API definitions at {}: {e}. The repository carries them in \
                 tests/qlik-api/; QLIK_API_DEFINITIONS, when set, must name a readable copy",
                path.display()
            )
        });
        Contract { doc: serde_json::from_str(&text).unwrap(), validators: HashMap::new() }
    }

    /// Every `$ref` reachable from schema `name`, which must all resolve.
    fn refs_from(&self, name: &str) -> BTreeSet<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|x| walk(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut seen = BTreeSet::new();
        let mut todo = vec![format!("#/components/schemas/{name}")];
        while let Some(r) = todo.pop() {
            if !seen.insert(r.clone()) {
                continue;
            }
            let target = self
                .doc
                .pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("`{r}` does not resolve"));
            walk(target, &mut todo);
        }
        seen
    }

    /// Validates `body` against schema `name`, panicking with every violation.
    fn check(&mut self, name: &str, body: &Value, what: &str) {
        if !self.validators.contains_key(name) {
            // Panics naming any `$ref` that does not resolve.
            let refs = self.refs_from(name);
            assert!(refs.contains(&format!("#/components/schemas/{name}")));
            // The whole `components` beside the root `$ref`, so every `$ref` resolves in-document.
            let schema =
                json!({"$ref": format!("#/components/schemas/{name}"), "components": self.doc["components"]});
            let v = jsonschema::options()
                .with_draft(Draft::Draft7)
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("schema {name}: {e}"));
            self.validators.insert(name.to_owned(), v);
        }
        let errors: Vec<String> = self.validators[name]
            .iter_errors(body)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .take(10)
            .collect();
        assert!(errors.is_empty(), "{what} violates {name}:\n{}", errors.join("\n"));
    }
}

/// The first `max_pages` pages of `url` (absolute), checked against `schema`.
async fn check_pages(
    contract: &mut Contract,
    key: &str,
    url: String,
    schema: &str,
    max_pages: usize,
) -> Vec<Value> {
    let c = client();
    let mut url = url;
    let mut records = Vec::new();
    for _ in 0..max_pages {
        let got = get(&c, &url, Some(key)).await;
        assert_eq!(got.status, 200, "GET {url}: {}", got.body);
        contract.check(schema, &got.body, &url);
        records.extend(got.body["data"].as_array().cloned().unwrap_or_default());
        match got.body.pointer("/links/next/href").and_then(Value::as_str) {
            Some(n) => url = n.to_owned(),
            None => break,
        }
    }
    records
}

/// Checks every endpoint of `sim` with `key` (a Tenant Admin's when `admin`).
async fn check_tenant(contract: &mut Contract, sim: &Simulator, key: &str, admin: bool) {
    let b = sim.base_url();
    let all = url::form_urlencoded::byte_serialize(
        br#"status eq "active" or status eq "invited" or status eq "disabled" or status eq "deleted" or status eq "provisioned""#,
    )
    .collect::<String>();
    let users =
        check_pages(contract, key, format!("{b}/api/v1/users?limit=40&filter={all}"), "Users", 4).await;
    check_pages(contract, key, format!("{b}/api/v1/users?totalResults=true"), "Users", 2).await;
    check_pages(contract, key, format!("{b}/api/v1/groups?limit=3"), "Groups", 3).await;
    check_pages(contract, key, format!("{b}/api/v1/roles?limit=4&totalResults=true"), "ListRolesResult", 3)
        .await;
    let spaces = check_pages(contract, key, format!("{b}/api/v1/spaces?limit=4"), "Spaces", 3).await;
    for space in spaces.iter().take(4) {
        let url = format!("{b}/api/v1/spaces/{}/assignments?limit=2", s(space, "id"));
        check_pages(contract, key, url, "Assignments", 3).await;
    }
    check_pages(
        contract,
        key,
        format!("{b}/api/v1/items?resourceType=app,qvapp&limit=30"),
        "ItemsListItemsResponseBody",
        3,
    )
    .await;
    let c = client();
    if let Some(u) = users.first() {
        let got = get(&c, &format!("{b}/api/v1/users/{}", s(u, "id")), Some(key)).await;
        contract.check("User", &got.body, "users/{id}");
    }
    let tenant = get(&c, &format!("{b}/api/v1/tenants/{}", sim.tenant_id()), Some(key)).await;
    contract.check("Tenant", &tenant.body, "tenants/{id}");
    if !admin {
        return;
    }
    for (path, schema) in
        [("/api/v1/licenses/overview", "licenseOverview"), ("/api/v1/licenses/status", "licenseStatus")]
    {
        let got = get(&c, &format!("{b}{path}"), Some(key)).await;
        assert_eq!(got.status, 200);
        contract.check(schema, &got.body, path);
    }
    check_pages(contract, key, format!("{b}/api/v1/licenses/assignments?limit=30"), "assignmentsResponse", 3)
        .await;
    check_pages(
        contract,
        key,
        format!("{b}/api/v1/licenses/assignments?orphans=true&limit=2"),
        "assignmentsResponse",
        3,
    )
    .await;
    check_pages(
        contract,
        key,
        format!("{b}/api/v1/licenses/consumption?limit=50"),
        "consumptionEventsResponse",
        3,
    )
    .await;
    let filter =
        url::form_urlencoded::byte_serialize(br#"endTime gt "2026-03-01T00:00:00.000Z""#).collect::<String>();
    check_pages(
        contract,
        key,
        format!("{b}/api/v1/licenses/consumption?sort=-endTime&filter={filter}"),
        "consumptionEventsResponse",
        3,
    )
    .await;
    check_pages(contract, key, format!("{b}/api/v1/api-keys?limit=4"), "api-key-page", 3).await;
    let config = get(&c, &format!("{b}/api/v1/api-keys/configs/{}", sim.tenant_id()), Some(key)).await;
    contract.check("ApiKeysConfig", &config.body, "api-keys/configs");
    check_pages(contract, key, format!("{b}/api/v1/audits?limit=30"), "GetResult", 3).await;
    let asc = format!("{b}/api/v1/audits?sort=%2BeventTime&eventType=com.qlik.user-session.begin&limit=20");
    let events = check_pages(contract, key, asc, "GetResult", 3).await;
    for (path, schema) in
        [("/api/v1/audits/types", "GetObjectsResult"), ("/api/v1/audits/settings", "GetSettingsResult")]
    {
        let got = get(&c, &format!("{b}{path}"), Some(key)).await;
        assert_eq!(got.status, 200);
        contract.check(schema, &got.body, path);
    }
    if let Some(first) = events.first() {
        let day = &s(first, "eventTime")[..10];
        let archived = get(&c, &format!("{b}/api/v1/audits/archive?date={day}"), Some(key)).await;
        assert!(!archived.body["data"].as_array().unwrap().is_empty(), "the archive keeps {day}");
        contract.check("GetArchiveResult", &archived.body, "audits/archive");
    }
    for usage in ["true", "false"] {
        let quotas = get(&c, &format!("{b}/api/v1/quotas?reportUsage={usage}"), Some(key)).await;
        contract.check("GetQuotasResult", &quotas.body, "quotas");
    }
    let settings = get(&c, &format!("{b}/api/v1/licenses/settings"), Some(key)).await;
    assert_eq!(settings.status, 200);
    contract.check("settingsBody", &settings.body, "licenses/settings");
    // An admin's listing: the definition's `oneOf` also offers the non-admin shape, which an
    // admin item matches too, so the admin schema is checked on its own.
    check_pages(
        contract,
        key,
        format!("{b}/api/v1/oauth-clients?limit=3&totalResults=true"),
        "OAuthClientAdminListResponse",
        3,
    )
    .await;
}

#[tokio::test]
async fn every_endpoint_matches_qliks_definitions_in_every_fault_free_mode() {
    let mut contract = Contract::load();
    let modes = [
        SimConfig::small(),
        SimConfig { seed: 7, rate_limit_per_minute: Some(10_000), ..SimConfig::small() },
        SimConfig {
            seed: 99,
            users: 6,
            groups: 0,
            roles_custom: 0,
            spaces: 1,
            apps: 0,
            license_assignments: 0,
            consumption_events: 0,
            api_keys: 0,
            ..SimConfig::small()
        },
    ];
    for config in modes {
        let sim = Simulator::start(config).await.unwrap();
        let keys = sim.keys().clone();
        check_tenant(&mut contract, &sim, &keys.admin, true).await;
        check_tenant(&mut contract, &sim, &keys.expiring_soon, true).await;
        check_tenant(&mut contract, &sim, &keys.non_admin, false).await;
        check_executions(&mut contract, &sim, false).await;
    }
    let capacity = SimConfig { seed: 5, subscription: Subscription::CapacityBased, ..SimConfig::small() };
    // Only this endpoint: the capacity tenant's `fullUser` allotment is outside the
    // definition's enumeration of allotment names (2025-01), which predates the kind.
    let sim = Simulator::start(capacity).await.unwrap();
    check_executions(&mut contract, &sim, true).await;
}

/// `consumption/executions`: pages in every order and selection on a capacity tenant, the
/// 404 of a user-based one; `ExecutionsByTenantList` and `ErrorResponse`.
async fn check_executions(contract: &mut Contract, sim: &Simulator, capacity: bool) {
    let b = sim.base_url();
    let key = &sim.keys().admin;
    let path = "/api/v1/consumption/executions";
    if !capacity {
        let got = get(&client(), &format!("{b}{path}"), Some(key)).await;
        assert_eq!(got.status, 404);
        contract.check("ErrorResponse", &got.body, "consumption/executions on a user-based tenant");
        return;
    }
    let filter =
        url::form_urlencoded::byte_serialize(br#"overage eq "true" or userid pr"#).collect::<String>();
    for query in [
        "limit=10".to_string(),
        "sort=%2Bperiodstart&sort=-periodend&limit=30".to_string(),
        "periodsToInclude=current&periodsToInclude=previous&offset=5".to_string(),
        format!("filter={filter}&limit=200"),
    ] {
        let got = check_pages(contract, key, format!("{b}{path}?{query}"), "ExecutionsByTenantList", 8).await;
        assert!(!got.is_empty(), "{query}");
    }
}

#[tokio::test]
async fn error_bodies_match_the_services_error_schemas() {
    let mut contract = Contract::load();
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = client();
    let b = sim.base_url();
    let admin = Some(sim.keys().admin.as_str());
    for (url, key, schema) in [
        (format!("{b}/api/v1/users?limit=0"), admin, "Errors"),
        (format!("{b}/api/v1/users"), Some(sim.keys().expired.as_str()), "Errors"),
        (format!("{b}/api/v1/groups?limit=500"), admin, "Errors"),
        (format!("{b}/api/v1/spaces/nope/assignments"), admin, "Errors"),
        (
            format!("{b}/api/v1/api-keys/configs/{}", sim.tenant_id()),
            Some(sim.keys().non_admin.as_str()),
            "Errors",
        ),
        (format!("{b}/api/v1/oauth-clients"), Some(sim.keys().non_admin.as_str()), "Errors"),
        (format!("{b}/api/v1/items?limit=0"), admin, "ErrorResponseBody"),
        (format!("{b}/api/v1/consumption/executions?limit=201"), admin, "ErrorResponse"),
        (format!("{b}/api/v1/consumption/executions?sort=name"), admin, "ErrorResponse"),
    ] {
        let got = get(&c, &url, key).await;
        assert!(got.status >= 400, "{url}");
        contract.check(schema, &got.body, &url);
    }
    // Licence errors carry the deprecated `error`/`message` the definition requires, with the
    // numeric `code` real tenants send (the definition says string: clients must accept both).
    let lic = get(&c, &format!("{b}/api/v1/licenses/assignments?limit=0"), admin).await;
    for field in ["error", "message", "errors"] {
        assert!(lic.body.get(field).is_some(), "{field}: {}", lic.body);
    }
}

#[tokio::test]
async fn the_token_endpoint_answers_as_the_definitions_say() {
    let mut contract = Contract::load();
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let (id, secret) = sim.oauth_client();
    let url = format!("{}/oauth/token", sim.base_url());
    let c = client();
    let json_body = json!({"client_id": id, "client_secret": secret, "grant_type": "client_credentials"});
    let form = [
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("grant_type", "client_credentials"),
    ];
    let answers =
        [c.post(&url).json(&json_body).send().await.unwrap(), c.post(&url).form(&form).send().await.unwrap()];
    let mut tokens = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 200);
        let body: Value = answer.json().await.unwrap();
        contract.check("oauth-token-response", &body, "POST /oauth/token");
        assert_eq!(body["expires_in"], 6 * 3600, "Qlik's default lifetime");
        tokens.push(s(&body, "access_token"));
    }
    assert_ne!(tokens[0], tokens[1], "every exchange issues a new token");
    let users = format!("{}/api/v1/users", sim.base_url());
    assert_eq!(get(&c, &users, Some(&tokens[0])).await.status, 200);
    sim.expire_tokens();
    let expired = get(&c, &users, Some(&tokens[0])).await;
    assert_eq!(expired.status, 401);
    contract.check("Errors", &expired.body, "an expired token");
    let wrong = json!({"client_id": id, "client_secret": "wrong", "grant_type": "client_credentials"});
    let refused = c.post(&url).json(&wrong).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    contract.check("Errors", &refused.json().await.unwrap(), "wrong client credentials");
}

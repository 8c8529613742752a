//! Licence hygiene (issue 16): automatic seat assignment, the API key policy, OAuth
//! clients, and apps with their views and size, QlikView documents among them, land as the
//! simulator serves them.

mod qlik_support;
mod sim_common;

use connector_api::State;
use qlik_support::{assert_exact, config, read};
use serde_json::{Value, json};
use tests::qlik_sim::{SimConfig, Simulator};

const HYGIENE: &[&str] = &["license_settings", "api_key_policy", "oauth_clients", "apps", "quotas"];

#[tokio::test]
async fn hygiene_streams_land_the_tenants_settings_policy_clients_and_app_usage() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let outcome = read(
        &config(&sim, &sim.keys().admin, json!({"page_size": 7})),
        Some(HYGIENE),
        &State::default(),
        false,
    )
    .await;
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_exact(&sim, &outcome, HYGIENE, "hygiene streams");

    let settings = &outcome.stream("license_settings")[0];
    assert_eq!(settings["tenant_id"], sim.tenant_id());
    assert_eq!(
        (&settings["auto_assign_analyzer"], &settings["auto_assign_professional"]),
        (&json!(true), &json!(false))
    );
    let policy = &outcome.stream("api_key_policy")[0];
    assert_eq!(policy["max_keys_per_user"], 5);
    assert_eq!(policy["max_api_key_expiry"], "P365D");
    assert_eq!(policy["scim_external_client_expiry"], "P365D");
    let policy_requests: Vec<_> =
        sim.requests().into_iter().filter(|r| r.path.starts_with("/api/v1/api-keys/configs/")).collect();
    assert_eq!(policy_requests.len(), 1);
    assert_eq!(policy_requests[0].path, format!("/api/v1/api-keys/configs/{}", sim.tenant_id()));

    let clients = outcome.stream("oauth_clients");
    let m2m = clients.iter().filter(|c| c["allowed_grant_types"] == json!(["client_credentials"])).count();
    assert!(m2m >= 1 && m2m < clients.len(), "{m2m} machine-to-machine clients of {}", clients.len());
    assert!(clients.iter().all(|c| c["connection_config"]["consentMethod"].is_string()));

    // Views and size, against the items as a plain client reads them.
    let served = sim_common::records(&sim, "/api/v1/items?resourceType=app,qvapp&limit=100").await;
    let apps = outcome.stream("apps");
    let sum =
        |rows: &[Value], f: &dyn Fn(&Value) -> &Value| rows.iter().filter_map(|r| f(r).as_u64()).sum::<u64>();
    assert_eq!(sum(apps, &|a| &a["views_28d"]), sum(&served, &|i| &i["itemViews"]["total"]));
    let idle = apps.iter().filter(|a| a["views_28d"] == 0).count();
    assert_eq!(idle, served.iter().filter(|i| i["itemViews"]["total"] == 0).count());
    assert!(idle > 0 && idle < apps.len(), "{idle} of {} never opened", apps.len());
    assert!(
        apps.iter()
            .all(|a| a["app_file_bytes"].is_number() && a["views_by_week"].as_array().unwrap().len() == 4)
    );
    assert!(apps.iter().all(|a| a["_extra"].get("itemViews").is_none()), "every views field is a column");
    let quotas = outcome.stream("quotas");
    let shared = quotas.iter().find(|q| q["id"] == "shared_spaces").unwrap();
    assert_eq!((&shared["quota"], &shared["unit"]), (&json!(1000.0), &json!("spaces")));
    let served_spaces = sim_common::records(&sim, "/api/v1/spaces?limit=100").await;
    let shared_spaces = served_spaces.iter().filter(|s| s["type"] == "shared").count();
    assert_eq!(shared["usage"], json!(shared_spaces as f64), "use counted from the tenant");
    assert!(quotas.iter().all(|q| q["_extra"].get("attributes").is_none()));
    let qlikview = apps.iter().filter(|a| a["resource_type"] == "qvapp").count();
    assert_eq!((apps.len() - qlikview, qlikview), (230, 23));
}

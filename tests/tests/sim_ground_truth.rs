//! The simulator's ground truth equals what a plain paging client collects, and a seed always
//! gives the same tenant.

mod sim_common;

use serde_json::Value;
use sim_common::{client, get, pages, records, s};
use tests::digest::key_digest;
use tests::qlik_sim::{SimConfig, Simulator};

const ALL_STATUSES: &str = r#"status eq "active" or status eq "invited" or status eq "disabled" or status eq "deleted" or status eq "provisioned""#;

fn q(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[tokio::test]
async fn ground_truth_equals_a_paging_clients_harvest() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let truth = sim.ground_truth().clone();

    let users = records(&sim, &format!("/api/v1/users?limit=100&filter={}", q(ALL_STATUSES))).await;
    assert!(users.len() >= 250);
    assert_eq!(key_digest(users.iter().map(|u| [s(u, "id")])), *truth.stream("users"));
    let pairs = |field: &str| -> Vec<[String; 2]> {
        users
            .iter()
            .flat_map(|u| u[field].as_array().unwrap().iter().map(move |r| [s(u, "id"), s(r, "id")]))
            .collect()
    };
    assert_eq!(key_digest(pairs("assignedRoles")), *truth.stream("user_roles"));
    assert_eq!(key_digest(pairs("assignedGroups")), *truth.stream("user_groups"));

    let ids = |recs: &[Value]| key_digest(recs.iter().map(|r| [s(r, "id")]));
    assert_eq!(ids(&records(&sim, "/api/v1/groups?limit=5").await), *truth.stream("groups"));
    assert_eq!(ids(&records(&sim, "/api/v1/roles?limit=4").await), *truth.stream("roles"));
    let spaces = records(&sim, "/api/v1/spaces?limit=7").await;
    assert_eq!(ids(&spaces), *truth.stream("spaces"));
    let mut space_assignments = Vec::new();
    for space in &spaces {
        space_assignments
            .extend(records(&sim, &format!("/api/v1/spaces/{}/assignments?limit=2", s(space, "id"))).await);
    }
    assert_eq!(ids(&space_assignments), *truth.stream("space_assignments"));
    let items = records(&sim, "/api/v1/items?resourceType=app,qvapp&limit=100").await;
    assert_eq!(ids(&items), *truth.stream("apps"));
    let of_type = |t: &str| items.iter().filter(|i| i["resourceType"] == t).count();
    assert_eq!((of_type("app"), of_type("qvapp")), (230, 23), "a QlikView document per ten apps");
    let clients = records(&sim, "/api/v1/oauth-clients?limit=4").await;
    assert_eq!(key_digest(clients.iter().map(|c| [s(c, "clientId")])), *truth.stream("oauth_clients"));
    assert_eq!(clients.len(), 11);
    assert_eq!(key_digest([[sim.tenant_id()]]), *truth.stream("license_settings"));
    assert_eq!(key_digest([[sim.tenant_id()]]), *truth.stream("api_key_policy"));
    assert_eq!(ids(&records(&sim, "/api/v1/api-keys?limit=5").await), *truth.stream("api_keys"));
    assert_eq!(
        ids(&records(&sim, "/api/v1/licenses/consumption").await),
        *truth.stream("license_consumption_on_time"),
        "the first pass misses the events recorded late"
    );
    assert_eq!(
        ids(&records(&sim, "/api/v1/licenses/consumption").await),
        *sim.ground_truth().stream("license_consumption"),
        "the next listing has them"
    );
    assert_ne!(sim.ground_truth().stream("license_consumption"), truth.stream("license_consumption"));

    let assignment_keys =
        |recs: Vec<Value>| recs.iter().map(|a| [s(a, "subject"), s(a, "type")]).collect::<Vec<_>>();
    let plain_records = records(&sim, "/api/v1/licenses/assignments?limit=100").await;
    assert!(plain_records.iter().any(|a| a["excess"] == true), "some assignments are excess");
    for kind in ["professional", "analyzer"] {
        assert!(plain_records.iter().any(|a| a["type"] == kind), "{kind} assignments");
    }
    let listed = assignment_keys(plain_records);
    assert_eq!(key_digest(listed.clone()), *truth.stream("license_assignments"));
    let orphans = assignment_keys(records(&sim, "/api/v1/licenses/assignments?limit=100&orphans=true").await);
    assert_eq!(key_digest(orphans.clone()), *truth.stream("license_assignment_orphans"));
    let subjects: std::collections::HashSet<String> = users.iter().map(|u| s(u, "subject")).collect();
    assert!(
        orphans.iter().all(|o| !subjects.contains(&o[0])),
        "an orphan's subject is no user of this tenant"
    );
    let (of_users, of_nobody): (Vec<_>, Vec<_>) = listed.into_iter().partition(|a| subjects.contains(&a[0]));
    assert_eq!(key_digest(of_nobody), key_digest(orphans), "the plain listing includes every orphan");
    assert_eq!(of_users.len() as u64, 210);

    let overview = &pages(&sim, "/api/v1/licenses/overview").await[0];
    assert_eq!(key_digest([[s(overview, "licenseNumber")]]), *truth.stream("license_overview"));
    let allotments = overview["allotments"].as_array().unwrap();
    assert_eq!(
        key_digest(allotments.iter().map(|a| [s(overview, "licenseNumber"), s(a, "name")])),
        *truth.stream("license_allotments")
    );
    assert_eq!(key_digest([[sim.tenant_id()]]), *truth.stream("tenant"));
    // A user-based tenant meters nothing by capacity: 404, and nothing to land.
    let executions =
        get(&client(), &format!("{}/api/v1/consumption/executions", sim.base_url()), Some(&sim.keys().admin))
            .await;
    assert_eq!(executions.status, 404);
    assert_eq!(*truth.stream("consumption_executions"), key_digest(Vec::<[String; 1]>::new()));
    assert_eq!(truth.streams.len(), 29);
}

#[tokio::test]
async fn a_seed_always_gives_the_same_tenant() {
    let a = Simulator::start(SimConfig::small()).await.unwrap();
    let b = Simulator::start(SimConfig::small()).await.unwrap();
    let c = Simulator::start(SimConfig { seed: 43, ..SimConfig::small() }).await.unwrap();
    assert_eq!(a.ground_truth(), b.ground_truth());
    assert_ne!(a.ground_truth().stream("users"), c.ground_truth().stream("users"));
    assert_eq!(first(&a).await, first(&b).await);
}

async fn first(sim: &Simulator) -> String {
    let page = pages(sim, "/api/v1/users?limit=3").await.remove(0);
    page.to_string().replace(&sim.base_url(), "BASE")
}

#[tokio::test]
#[should_panic(expected = "known: api_key_policy, api_keys, api_keys@non_admin, apps")]
async fn an_unknown_stream_names_the_known_ones() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.ground_truth().stream("no_such_stream");
}

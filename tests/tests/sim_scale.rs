//! A benchmark-sized tenant starts at once and pages correctly at its far end: entities are
//! derived on demand, consumption is found by binary search on `endTime`.

mod sim_common;

use std::time::Instant;

use sim_common::{client, get, s};
use tests::qlik_sim::{SimConfig, Simulator};

#[tokio::test]
async fn a_benchmark_sized_tenant_starts_fast_and_pages_at_its_far_end() {
    let started = Instant::now();
    let sim = Simulator::start(SimConfig {
        users: 100_000,
        license_assignments: 50_000,
        consumption_events: 1_000_000,
        apps: 20_000,
        spaces: 2_000,
        groups: 300,
        ..SimConfig::small()
    })
    .await
    .unwrap();
    eprintln!("100k users / 1M events tenant started in {:?}", started.elapsed());
    let c = client();
    let admin = Some(sim.keys().admin.as_str());
    let b = sim.base_url();

    let last = get(&c, &format!("{b}/api/v1/licenses/consumption?sort=-endTime&limit=2"), admin).await.body;
    let newest = s(&last["data"][0], "endTime");
    let second = s(&last["data"][1], "endTime");
    assert!(second < newest);
    let t = Instant::now();
    let filter: String =
        url::form_urlencoded::byte_serialize(format!("endTime gt \"{second}\"").as_bytes()).collect();
    let tail = get(&c, &format!("{b}/api/v1/licenses/consumption?filter={filter}"), admin).await.body;
    eprintln!("filtered consumption page in {:?}", t.elapsed());
    assert_eq!(tail["data"].as_array().unwrap().len(), 1);
    assert_eq!(tail["data"][0]["id"], last["data"][0]["id"]);
    assert!(tail["links"].get("next").is_none());

    let t = Instant::now();
    let page = get(&c, &format!("{b}/api/v1/licenses/consumption?limit=200"), admin).await.body;
    eprintln!("200 events in {:?}", t.elapsed());
    assert_eq!(page["data"].as_array().unwrap().len(), 200);

    let overview = get(&c, &format!("{b}/api/v1/licenses/overview"), admin).await.body;
    let used: u64 = overview["allotments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["usageClass"] == "assigned")
        .map(|a| a["unitsUsed"].as_u64().unwrap())
        .sum();
    assert_eq!(used, 50_000, "every current-user assignment is counted once");
}

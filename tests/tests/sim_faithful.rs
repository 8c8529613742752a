//! The simulator does what Qlik Cloud does where our first version assumed otherwise
//! (issue 13): orphans in the plain assignment listing, licence links that carry only a
//! position, tied and late consumption events, and the situations behind flags (a space
//! deleted mid-run, a non-admin key's view, renames mid-listing, assignment shapes).

mod sim_common;

use std::collections::{BTreeSet, HashSet};

use base64::Engine;
use serde_json::Value;
use sim_common::{client, get, pages, pages_as, records, s};
use tests::digest::key_digest;
use tests::qlik_sim::{SimConfig, Simulator, Situations, non_admin};

const ALL_STATUSES: &str = r#"status eq "active" or status eq "invited" or status eq "disabled" or status eq "deleted" or status eq "provisioned""#;

fn q(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

fn with(situations: Situations) -> SimConfig {
    SimConfig { situations, ..SimConfig::small() }
}

/// The query parameter names of `href`.
fn query_names(href: &str) -> Vec<String> {
    url::Url::parse(href).unwrap().query_pairs().map(|(k, _)| k.into_owned()).collect()
}

#[tokio::test]
async fn licence_next_links_carry_only_limit_and_a_position() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = client();
    let admin = Some(sim.keys().admin.as_str());
    let first = get(
        &c,
        &format!(
            "{}/api/v1/licenses/consumption?limit=50&sort=-endTime&filter={}",
            sim.base_url(),
            q(r#"endTime ge "2026-03-01T00:00:00.000Z""#)
        ),
        admin,
    )
    .await;
    let next = s(&first.body["links"]["next"], "href");
    assert_eq!(query_names(&next), ["limit", "page"], "{next}");
    let token =
        url::Url::parse(&next).unwrap().query_pairs().find(|(k, _)| k == "page").unwrap().1.into_owned();
    let decoded = base64::engine::general_purpose::STANDARD.decode(token).unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "next:50",
        "the token is a position, as in Qlik's examples"
    );

    // Followed verbatim, the link pages through the unfiltered, ascending listing.
    let verbatim = get(&c, &next, admin).await;
    let oldest = s(&verbatim.body["data"][0], "endTime");
    assert!(oldest.as_str() < "2026-03-01", "the filter and sort are gone: {oldest}");
    let kept = &pages(&sim, "/api/v1/licenses/consumption?limit=50&sort=-endTime&filter=endTime+ge+%222026-03-01T00%3A00%3A00.000Z%22").await[1];
    assert!(
        s(&kept["data"][0], "endTime").as_str() >= "2026-03-01",
        "with the query kept, page 2 follows page 1"
    );

    let orphans =
        get(&c, &format!("{}/api/v1/licenses/assignments?orphans=true&limit=2", sim.base_url()), admin).await;
    let next = s(&orphans.body["links"]["next"], "href");
    assert_eq!(query_names(&next), ["limit", "page"]);
    let subjects: HashSet<String> = records(&sim, "/api/v1/licenses/assignments?orphans=true&limit=100")
        .await
        .iter()
        .map(|a| s(a, "subject"))
        .collect();
    let verbatim = get(&c, &next, admin).await;
    assert!(
        verbatim.body["data"].as_array().unwrap().iter().any(|a| !subjects.contains(&s(a, "subject"))),
        "without orphans=true, page 2 holds assignments of users"
    );
}

#[tokio::test]
async fn the_plain_assignment_listing_includes_every_orphan() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let plain = pages(&sim, "/api/v1/licenses/assignments?limit=30").await;
    let listed: Vec<Value> = plain.iter().flat_map(|p| p["data"].as_array().unwrap().clone()).collect();
    let orphans = records(&sim, "/api/v1/licenses/assignments?orphans=true&limit=100").await;
    assert_eq!(
        (listed.len(), orphans.len()),
        (210 + 7, 7),
        "210 assignments of users, 7 orphans (210 / 40 + 2)"
    );
    let key = |a: &Value| [s(a, "subject"), s(a, "type")];
    let listed_keys: HashSet<[String; 2]> = listed.iter().map(key).collect();
    assert!(orphans.iter().all(|o| listed_keys.contains(&key(o))), "every orphan is in the plain listing");
    assert_eq!(key_digest(listed.iter().map(key)), *sim.ground_truth().stream("license_assignments"));
    let orphan_keys: HashSet<[String; 2]> = orphans.iter().map(key).collect();
    let pages_with_orphans = plain
        .iter()
        .filter(|p| p["data"].as_array().unwrap().iter().any(|a| orphan_keys.contains(&key(a))))
        .count();
    assert!(
        pages_with_orphans >= 5,
        "orphans are spread over the listing: {pages_with_orphans} of {} pages",
        plain.len()
    );
}

#[tokio::test]
async fn events_end_in_whole_seconds_and_tie_across_page_breaks() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    for limit in [7, 100, 200] {
        let ps = pages(&sim, &format!("/api/v1/licenses/consumption?limit={limit}")).await;
        let ends =
            |p: &Value| p["data"].as_array().unwrap().iter().map(|e| s(e, "endTime")).collect::<Vec<_>>();
        assert!(ends(&ps[0]).iter().all(|e| e.ends_with(".000Z")), "second resolution");
        let ties = ps.windows(2).filter(|w| ends(&w[0]).last() == ends(&w[1]).first()).count();
        assert!(ties >= 1, "at limit {limit} some events ending together straddle a page break");
    }
}

#[tokio::test]
async fn late_events_arrive_after_a_listing_has_passed_them() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let on_time = records(&sim, "/api/v1/licenses/consumption").await;
    let truth_on_time = sim.ground_truth().stream("license_consumption_on_time").clone();
    assert_eq!(key_digest(on_time.iter().map(|e| [s(e, "id")])), truth_on_time);
    let cursor = on_time.iter().map(|e| s(e, "endTime")).max().unwrap();

    let all = records(&sim, "/api/v1/licenses/consumption").await;
    assert_eq!(
        key_digest(all.iter().map(|e| [s(e, "id")])),
        *sim.ground_truth().stream("license_consumption")
    );
    let seen: HashSet<String> = on_time.iter().map(|e| s(e, "id")).collect();
    let late: Vec<&Value> = all.iter().filter(|e| !seen.contains(&s(e, "id"))).collect();
    assert_eq!(late.len() as u64, 1000 - truth_on_time.count);
    assert!(!late.is_empty());
    assert!(late.iter().all(|e| s(e, "endTime") < cursor), "each ends before the first listing's last event");
    let after_cursor = records(
        &sim,
        &format!("/api/v1/licenses/consumption?filter={}", q(&format!("endTime gt \"{cursor}\""))),
    )
    .await;
    assert!(after_cursor.is_empty(), "asking only for what came after the cursor never finds them");
}

#[tokio::test]
async fn a_space_deleted_mid_run_is_listed_and_its_members_answer_404() {
    let sim = Simulator::start(with(Situations { space_deleted_mid_run: true, ..Default::default() }))
        .await
        .unwrap();
    let spaces = records(&sim, "/api/v1/spaces?limit=100").await;
    assert_eq!(spaces.len(), 25, "the listing still has it");
    let c = client();
    let mut gone = Vec::new();
    for space in &spaces {
        let got = get(
            &c,
            &format!("{}/api/v1/spaces/{}/assignments", sim.base_url(), s(space, "id")),
            Some(&sim.keys().admin),
        )
        .await;
        if got.status == 404 {
            assert_eq!(s(&got.body["errors"][0], "detail"), "Space not found or access denied");
            gone.push(s(space, "id"));
        } else {
            assert_eq!(got.status, 200);
        }
    }
    assert_eq!(gone.len(), 1, "{gone:?}");
    assert_ne!(gone[0], s(&spaces[0], "id"), "not the first space: the run has started");

    let plain = Simulator::start(SimConfig::small()).await.unwrap();
    let url = format!("{}/api/v1/spaces/{}/assignments", plain.base_url(), gone[0]);
    assert_eq!(get(&c, &url, Some(&plain.keys().admin)).await.status, 200, "only behind its flag");
}

#[tokio::test]
async fn a_non_admin_key_sees_its_own_keys_and_the_spaces_and_apps_it_can_access() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let key = sim.keys().non_admin.clone();
    let listed = |path: &'static str| {
        let (sim, key) = (&sim, key.clone());
        async move {
            pages_as(sim, &key, path)
                .await
                .into_iter()
                .flat_map(|p| p["data"].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    let ids = |recs: &[Value]| key_digest(recs.iter().map(|r| [s(r, "id")]));
    let truth = sim.ground_truth();
    let api_keys = listed("/api/v1/api-keys?limit=5").await;
    assert_eq!(ids(&api_keys), *truth.stream(&non_admin("api_keys")));
    let me = get(&client(), &format!("{}/api/v1/users/me", sim.base_url()), Some(&key)).await;
    let my_id = me.headers["location"].to_str().unwrap().rsplit('/').next().unwrap().to_owned();
    assert!(api_keys.iter().all(|k| s(k, "sub") == my_id), "only the user's own keys");
    let spaces = listed("/api/v1/spaces?limit=7").await;
    assert_eq!(ids(&spaces), *truth.stream(&non_admin("spaces")));
    assert!(spaces.len() < 25 && !spaces.is_empty(), "{} of 25 spaces", spaces.len());
    let apps = listed("/api/v1/items?resourceType=app,qvapp&limit=100").await;
    assert_eq!(ids(&apps), *truth.stream(&non_admin("apps")));
    assert!(apps.len() < 253 && !apps.is_empty(), "{} of 253 apps and QlikView documents", apps.len());

    let seen: HashSet<String> = spaces.iter().map(|sp| s(sp, "id")).collect();
    let hidden = records(&sim, "/api/v1/spaces?limit=100")
        .await
        .into_iter()
        .find(|sp| !seen.contains(&s(sp, "id")))
        .unwrap();
    let got = get(
        &client(),
        &format!("{}/api/v1/spaces/{}/assignments", sim.base_url(), s(&hidden, "id")),
        Some(&key),
    )
    .await;
    assert_eq!(got.status, 404, "a space the user cannot access is not found");
    let lic = get(&client(), &format!("{}/api/v1/licenses/status", sim.base_url()), Some(&key)).await;
    assert_eq!(lic.status, 403);
}

#[tokio::test]
async fn renames_during_a_listing_by_name_repeat_one_user_and_miss_another() {
    let rename = Situations { rename_during_users_listing: true, ..Default::default() };
    let sim = Simulator::start(with(rename)).await.unwrap();
    let by_name = records(&sim, &format!("/api/v1/users?limit=40&filter={}", q(ALL_STATUSES))).await;
    let truth = sim.ground_truth().stream("users").clone();
    let ids: Vec<String> = by_name.iter().map(|u| s(u, "id")).collect();
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len() as u64, distinct.len() as u64),
        (truth.count, truth.count - 1),
        "one read twice, one missed"
    );
    let names: Vec<String> = by_name.iter().map(|u| s(u, "name")).collect();
    assert!(names[..40].windows(2).all(|w| w[0] <= w[1]), "the first page is in name order");

    let sim = Simulator::start(with(rename)).await.unwrap();
    let by_id = records(&sim, &format!("/api/v1/users?limit=40&sort=%2Bid&filter={}", q(ALL_STATUSES))).await;
    let ids: Vec<String> = by_id.iter().map(|u| s(u, "id")).collect();
    assert_eq!(key_digest(ids.iter().map(|i| [i])), truth, "by id, every user once");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in id order");
}

#[tokio::test]
async fn assignment_shapes_vary_only_behind_their_flag() {
    let sim = Simulator::start(with(Situations { assignment_shape_variants: true, ..Default::default() }))
        .await
        .unwrap();
    let rows = records(&sim, "/api/v1/licenses/assignments?limit=100").await;
    let named: Vec<&Value> = rows.iter().filter(|a| a.get("userId").is_some()).collect();
    let untyped = rows.iter().filter(|a| a.get("type").is_none()).count();
    assert_eq!((named.len(), untyped), (53, 23 + 1), "every 4th user's row named, every 9th row untyped");
    let users = records(&sim, &format!("/api/v1/users?limit=100&filter={}", q(ALL_STATUSES))).await;
    for a in named {
        let holder = users.iter().find(|u| s(u, "id") == s(a, "userId")).unwrap();
        assert_eq!((s(holder, "subject"), s(holder, "name")), (s(a, "subject"), s(a, "name")));
    }
    let plain = Simulator::start(SimConfig::small()).await.unwrap();
    let rows = records(&plain, "/api/v1/licenses/assignments?limit=100").await;
    assert!(rows.iter().all(|a| a.get("type").is_some() && a.get("userId").is_none()));
}

//! What a real tenant does, reproduced: the users status default, filters, paging, limits,
//! keys, redirects and the rate limit.

mod sim_common;

use serde_json::Value;
use sim_common::{client, get, pages, records, s};
use tests::qlik_sim::{SimConfig, Simulator};

fn q(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

#[tokio::test]
async fn plain_users_lists_only_active_users_and_a_filter_selects_statuses() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let all_statuses = r#"status eq "active" or status eq "invited" or status eq "disabled" or status eq "deleted" or status eq "provisioned""#;
    let all = records(&sim, &format!("/api/v1/users?limit=100&filter={}", q(all_statuses))).await;
    assert_eq!(all.len() as u64, sim.ground_truth().stream("users").count);
    let count = |st: &str| all.iter().filter(|u| u["status"] == st).count();
    for st in ["active", "invited", "disabled", "deleted", "provisioned"] {
        assert!(count(st) > 0, "the small tenant has {st} users");
    }
    let plain = records(&sim, "/api/v1/users?limit=100").await;
    assert_eq!(plain.len(), count("active"));
    assert!(plain.iter().all(|u| u["status"] == "active"));

    let filtered = records(
        &sim,
        &format!("/api/v1/users?limit=100&filter={}", q(r#"(status eq "disabled" or status eq "deleted")"#)),
    )
    .await;
    assert_eq!(filtered.len(), count("disabled") + count("deleted"));
    let by_param = records(&sim, "/api/v1/users?limit=100&status=invited,provisioned").await;
    assert_eq!(by_param.len(), count("invited") + count("provisioned"));

    // Realistic variety: users without email, non-ASCII names, several groups and roles.
    assert!(all.iter().any(|u| u.get("email").is_none()));
    assert!(all.iter().any(|u| !s(u, "name").is_ascii()));
    assert!(all.iter().any(|u| u["assignedGroups"].as_array().unwrap().len() >= 2));
    assert!(all.iter().any(|u| u["assignedRoles"].as_array().unwrap().len() >= 2));

    let total = get(
        &client(),
        &format!("{}/api/v1/users?limit=1&totalResults=true", sim.base_url()),
        Some(&sim.keys().admin),
    )
    .await;
    assert_eq!(total.body["totalResults"], count("active"));

    let bad = get(
        &client(),
        &format!("{}/api/v1/users?filter={}", sim.base_url(), q(r#"shoeSize eq "42""#)),
        Some(&sim.keys().admin),
    )
    .await;
    assert_eq!(bad.status, 400);
    assert!(s(&bad.body["errors"][0], "detail").contains("shoeSize"), "{}", bad.body);
}

#[tokio::test]
async fn cursors_page_forwards_and_backwards_with_absolute_links() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let ps = pages(&sim, "/api/v1/groups?limit=5").await;
    assert_eq!(ps.len(), 3, "12 groups at 5 per page");
    let next = s(&ps[0]["links"]["next"], "href");
    assert!(next.starts_with(&format!("{}/api/v1/groups?", sim.base_url())), "{next}");
    assert!(next.contains("limit=5"));
    assert!(ps[0]["links"].get("prev").is_none());
    assert!(ps[2]["links"].get("next").is_none());
    let prev = s(&ps[1]["links"]["prev"], "href");
    let back = get(&client(), &prev, Some(&sim.keys().admin)).await;
    assert_eq!(back.body["data"], ps[0]["data"]);

    // Links are built from the request's Host.
    let resp = reqwest::Client::new()
        .get(format!("{}/api/v1/roles?limit=2", sim.base_url()))
        .header("host", "tenant.eu.qlikcloud.com")
        .bearer_auth(&sim.keys().admin)
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(s(&body["links"]["next"], "href").starts_with("http://tenant.eu.qlikcloud.com/api/v1/roles?"));
    assert_eq!(sim.requests().last().unwrap().host, "tenant.eu.qlikcloud.com");

    // Licence endpoints page with opaque `page` tokens.
    let lic = pages(&sim, "/api/v1/licenses/assignments?limit=100").await;
    assert_eq!(lic.len(), 3);
    assert!(s(&lic[0]["links"]["next"], "href").contains("page="));
    let keys = pages(&sim, "/api/v1/api-keys?limit=5").await;
    assert!(s(&keys[0]["links"]["next"], "href").contains("startingAfter="));
}

#[tokio::test]
async fn limits_outside_the_definitions_are_400_in_qliks_envelope() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = client();
    let admin = Some(sim.keys().admin.as_str());
    let cases = [
        ("/api/v1/users?limit=0", "100"),
        ("/api/v1/users?limit=101", "100"),
        ("/api/v1/groups?limit=abc", "100"),
        ("/api/v1/items?limit=101", "100"),
        ("/api/v1/licenses/assignments?limit=101", "100"),
        ("/api/v1/licenses/consumption?limit=201", "200"),
        ("/api/v1/api-keys?limit=500", "100"),
    ];
    for (path, max) in cases {
        let got = get(&c, &format!("{}{path}", sim.base_url()), admin).await;
        assert_eq!(got.status, 400, "{path}");
        let err = &got.body["errors"][0];
        assert!(s(err, "detail").contains("limit") && s(err, "detail").contains(max), "{path}: {err}");
    }
    // Licences answer numeric codes and the deprecated top-level fields; identity strings.
    let lic = get(&c, &format!("{}/api/v1/licenses/consumption?limit=201", sim.base_url()), admin).await;
    assert_eq!(lic.body["errors"][0]["status"], 400);
    assert_eq!(lic.body["errors"][0]["code"], 400);
    assert!(lic.body["message"].is_string() && lic.body["error"].is_string());
    let users = get(&c, &format!("{}/api/v1/users?limit=0", sim.base_url()), admin).await;
    assert_eq!(users.body["errors"][0]["status"], "400");
    for path in
        ["/api/v1/licenses/consumption?limit=200", "/api/v1/users?limit=100", "/api/v1/spaces?limit=100"]
    {
        assert_eq!(get(&c, &format!("{}{path}", sim.base_url()), admin).await.status, 200, "{path}");
    }
}

#[tokio::test]
async fn consumption_filters_and_sorts_on_end_time() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let on_time = records(&sim, "/api/v1/licenses/consumption").await;
    assert_eq!(on_time.len() as u64, sim.ground_truth().stream("license_consumption_on_time").count);
    let all = records(&sim, "/api/v1/licenses/consumption").await;
    assert_eq!(all.len(), 1_000, "late events are listed once the listing was read to its end");
    let ends: Vec<String> = all.iter().map(|e| s(e, "endTime")).collect();
    assert!(ends.windows(2).all(|w| w[0] <= w[1]), "ascending by default");
    let months: std::collections::BTreeSet<&str> = ends.iter().map(|e| &e[..7]).collect();
    assert!(months.len() >= 12, "spread over months: {months:?}");
    let ids: std::collections::HashSet<String> = all.iter().map(|e| s(e, "id")).collect();
    assert_eq!(ids.len(), all.len());

    let cut = &ends[600];
    let after = records(
        &sim,
        &format!("/api/v1/licenses/consumption?filter={}", q(&format!("endTime gt \"{cut}\""))),
    )
    .await;
    assert_eq!(after.len(), ends.iter().filter(|e| *e > cut).count());
    let from = records(
        &sim,
        &format!("/api/v1/licenses/consumption?filter={}", q(&format!("endTime ge \"{cut}\""))),
    )
    .await;
    assert_eq!(from.len(), ends.iter().filter(|e| *e >= cut).count());
    let window = format!("endTime ge \"{}\" and endTime lt \"{}\"", ends[100], ends[350]);
    let between =
        records(&sim, &format!("/api/v1/licenses/consumption?limit=60&filter={}", q(&window))).await;
    let expected: Vec<&Value> =
        all.iter().filter(|e| s(e, "endTime") >= ends[100] && s(e, "endTime") < ends[350]).collect();
    assert_eq!(between.len(), expected.len());
    assert_eq!(s(&between[0], "id"), s(expected[0], "id"));

    let desc = records(&sim, "/api/v1/licenses/consumption?sort=-endTime&limit=150").await;
    assert_eq!(desc.len(), 1_000);
    assert!(desc.windows(2).all(|w| s(&w[0], "endTime") >= s(&w[1], "endTime")));

    let c = client();
    for bad in [
        "userId eq \"x\"",
        "endTime gt \"yesterday\"",
        "endTime gt \"2026-01-01T00:00:00Z\" or endTime lt \"2025-01-01T00:00:00Z\"",
    ] {
        let got = get(
            &c,
            &format!("{}/api/v1/licenses/consumption?filter={}", sim.base_url(), q(bad)),
            Some(&sim.keys().admin),
        )
        .await;
        assert_eq!(got.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn each_key_gets_the_status_a_real_tenant_gives() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = client();
    let k = sim.keys().clone();
    let url = |p: &str| format!("{}{p}", sim.base_url());
    for key in [&k.admin, &k.expiring_soon] {
        for p in ["/api/v1/users", "/api/v1/licenses/overview", "/api/v1/api-keys"] {
            assert_eq!(get(&c, &url(p), Some(key)).await.status, 200, "{p}");
        }
    }
    for p in ["/api/v1/users", "/api/v1/groups", "/api/v1/roles", "/api/v1/spaces", "/api/v1/items"] {
        assert_eq!(get(&c, &url(p), Some(&k.non_admin)).await.status, 200, "{p}");
    }
    for p in ["/api/v1/licenses/overview", "/api/v1/licenses/assignments", "/api/v1/licenses/consumption"] {
        let got = get(&c, &url(p), Some(&k.non_admin)).await;
        assert_eq!(got.status, 403, "{p}");
        assert!(got.body.to_string().contains("TenantAdmin"));
    }
    let mut details = std::collections::HashSet::new();
    for key in [&k.expired, &k.revoked, &k.legacy_developer, &"not-a-key".to_owned()] {
        let got = get(&c, &url("/api/v1/users"), Some(key)).await;
        assert_eq!(got.status, 401);
        details.insert(s(&got.body["errors"][0], "detail"));
    }
    assert_eq!(details.len(), 4, "each failure explains itself: {details:?}");
    let none = get(&c, &url("/api/v1/users"), None).await;
    assert_eq!(none.status, 401);
    assert!(!sim.requests().last().unwrap().authorized);

    // Keys are JWTs with the claims of a real key.
    let claims = |key: &str| -> Value {
        use base64::Engine;
        let part = key.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap())
            .unwrap()
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for claim in ["sub", "subType", "tenantId", "jti", "aud", "iss", "iat", "exp"] {
        assert!(claims(&k.admin).get(claim).is_some(), "{claim}");
    }
    assert_eq!(claims(&k.admin)["tenantId"], sim.tenant_id());
    assert!(claims(&k.expired)["exp"].as_i64().unwrap() < now);
    let soon = claims(&k.expiring_soon)["exp"].as_i64().unwrap() - now;
    assert!((4 * 86_400..=5 * 86_400).contains(&soon));

    sim.set_api_keys_enabled(false);
    let off = get(&c, &url("/api/v1/users"), Some(&k.admin)).await;
    assert_eq!(off.status, 401);
    assert!(s(&off.body["errors"][0], "detail").contains("disabled"));
    sim.set_api_keys_enabled(true);
    assert_eq!(get(&c, &url("/api/v1/users"), Some(&k.admin)).await.status, 200);
}

#[tokio::test]
async fn me_endpoints_redirect_like_qlik() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let c = client();
    let me = get(&c, &format!("{}/api/v1/users/me", sim.base_url()), Some(&sim.keys().non_admin)).await;
    assert_eq!(me.status, 301);
    let location = me.headers["location"].to_str().unwrap().to_owned();
    let user = get(&c, &location, Some(&sim.keys().non_admin)).await;
    assert_eq!(user.status, 200);
    assert!(location.ends_with(&s(&user.body, "id")));
    let tenant = get(&c, &format!("{}/api/v1/tenants/me", sim.base_url()), Some(&sim.keys().admin)).await;
    assert_eq!(tenant.status, 302);
    let t = get(&c, tenant.headers["location"].to_str().unwrap(), Some(&sim.keys().admin)).await;
    assert_eq!(s(&t.body, "id"), sim.tenant_id());
    let overview =
        get(&c, &format!("{}/api/v1/licenses/overview", sim.base_url()), Some(&sim.keys().admin)).await;
    assert_eq!(s(&overview.body, "licenseKey"), sim.license_key());
    assert!(sim.license_key().len() > 300 && sim.license_key().split('.').count() == 3);
}

#[tokio::test]
async fn the_rate_limit_is_per_user_over_five_minutes() {
    let sim =
        Simulator::start(SimConfig { rate_limit_per_minute: Some(20), ..SimConfig::small() }).await.unwrap();
    let c = client();
    let url = format!("{}/api/v1/roles", sim.base_url());
    for k in 0..100 {
        assert_eq!(
            get(&c, &url, Some(&sim.keys().admin)).await.status,
            200,
            "request {k}: five minutes' allowance at once"
        );
    }
    let limited = get(&c, &url, Some(&sim.keys().admin)).await;
    assert_eq!(limited.status, 429);
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((290..=300).contains(&retry), "the oldest request leaves the 300 s window: {retry}");
    assert_eq!(limited.body["errors"][0]["status"], "429");
    // Per user: the admin's second key shares the allowance, another user has their own.
    assert_eq!(get(&c, &url, Some(&sim.keys().expiring_soon)).await.status, 429);
    assert_eq!(get(&c, &url, Some(&sim.keys().non_admin)).await.status, 200);
    let log = sim.requests();
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 2);
    assert!(log.iter().all(|r| r.authorized && r.path == "/api/v1/roles"));
}

#[tokio::test]
async fn the_product_information_is_served_without_a_key_and_outside_the_rate_limit() {
    let sim =
        Simulator::start(SimConfig { rate_limit_per_minute: Some(1), ..SimConfig::small() }).await.unwrap();
    let c = client();
    let roles = format!("{}/api/v1/roles", sim.base_url());
    for _ in 0..5 {
        assert_eq!(get(&c, &roles, Some(&sim.keys().admin)).await.status, 200);
    }
    assert_eq!(get(&c, &roles, Some(&sim.keys().admin)).await.status, 429, "the allowance is spent");
    // What @qlik/api reads to know it talks to Qlik Cloud, not Qlik Sense on Windows.
    let info = get(&c, &format!("{}/resources/autogenerated/product-info.json", sim.base_url()), None).await;
    assert_eq!(info.status, 200);
    let deployment = info.body["composition"]["deploymentType"].as_str().unwrap();
    assert!(
        !["qliksenseserver", "qliksensedesktop", "qliksensemobile"].contains(&&*deployment.to_lowercase())
    );
    assert_ne!(info.body["composition"]["provider"], "fedramp");
}

#[tokio::test]
async fn dropping_the_simulator_stops_the_server() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let addr = sim.local_addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(sim);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "nothing listens on {addr} any more");
}

/// `consumption/executions` as https://qlik.dev/apis/rest/consumption describes it: limit
/// 1 to 200, page cursors in next links that carry only `limit` and `page`, an `offset`,
/// `-periodstart` first unless sorted otherwise, `periodsToInclude` and `filter`; 404 on a
/// user-based tenant.
#[tokio::test]
async fn consumption_executions_page_sort_and_filter_on_a_capacity_tenant_only() {
    use tests::qlik_sim::Subscription;
    let sim = Simulator::start(SimConfig { subscription: Subscription::CapacityBased, ..SimConfig::small() })
        .await
        .unwrap();
    let truth = sim.ground_truth().consumption_executions.clone();
    assert_eq!(truth.len(), 69);
    let c = client();
    let b = sim.base_url();
    let admin = Some(sim.keys().admin.as_str());
    let path = "/api/v1/consumption/executions";

    let first = get(&c, &format!("{b}{path}?limit=7&sort=%2Bperiodstart"), admin).await;
    assert_eq!(
        (first.status, &first.body["totalCount"], &first.body["currentPageCount"]),
        (200, &69.into(), &7.into())
    );
    assert_eq!(first.body["data"][0]["periodStart"], "2026-08-01");
    let next = &first.body["links"]["next"];
    let href = url::Url::parse(&s(next, "href")).unwrap();
    let keys: Vec<String> = href.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys, ["limit", "page"], "the link drops sort: {href}");
    assert_eq!(href.query_pairs().find(|(k, _)| k == "page").unwrap().1, s(next, "token"));
    assert_eq!(next["type"], "next");
    assert!(first.body["links"].get("prev").is_none());

    assert_eq!(records(&sim, &format!("{path}?limit=7")).await, truth, "all of it, -periodstart first");
    assert_eq!(truth[0]["periodStart"], "2026-10-01");
    let last = get(&c, &format!("{b}{path}?limit=7&offset=66"), admin).await;
    assert_eq!(last.body["data"].as_array().unwrap()[..], truth[66..]);
    assert!(last.body["links"].get("next").is_none() && last.body["links"]["prev"]["href"].is_string());
    let both = get(&c, &format!("{b}{path}?offset=1&page={}", s(next, "token")), admin).await;
    assert_eq!(both.status, 400);

    let automations = format!("filter={}", q(r#"resourcetype eq "automations""#));
    for (query, n) in
        [("periodsToInclude=current", 23), ("periodsToInclude=current,previous", 46), (&automations, 27)]
    {
        assert_eq!(records(&sim, &format!("{path}?limit=200&{query}")).await.len(), n, "{query}");
    }
    for limit in ["0", "201", "x"] {
        let got = get(&c, &format!("{b}{path}?limit={limit}"), admin).await;
        assert_eq!(got.status, 400, "limit={limit}");
        assert!(got.body["errors"][0]["code"].is_string() && got.body["traceId"].is_string(), "{}", got.body);
    }

    let user_based = Simulator::start(SimConfig::small()).await.unwrap();
    let got = get(&c, &format!("{}{path}", user_based.base_url()), Some(&user_based.keys().admin)).await;
    assert_eq!(got.status, 404);
    assert_eq!(got.body["errors"][0]["title"], "Not Found");
}

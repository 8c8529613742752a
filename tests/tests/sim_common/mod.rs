//! A straightforward paging client for the simulator's own tests.
#![allow(dead_code)]

use serde_json::Value;
use tests::qlik_sim::Simulator;

/// A GET's status, headers and body (`Value::Null` when the body is not JSON).
pub struct Got {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A client that does not follow redirects, so tests see Qlik's 301/302.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// GET `url` with `key` as bearer (no Authorization header when `key` is `None`).
pub async fn get(client: &reqwest::Client, url: &str, key: Option<&str>) -> Got {
    let mut req = client.get(url);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    Got { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::Null) }
}

/// Every page of `path_and_query` (admin key), following `links.next.href` with the query
/// parameters it leaves out put back, as a careful client must: licence links carry only
/// `limit` and `page`.
pub async fn pages(sim: &Simulator, path_and_query: &str) -> Vec<Value> {
    pages_as(sim, &sim.keys().admin, path_and_query).await
}

/// Every page of `path_and_query` with `key`, following next links as [`pages`] does.
pub async fn pages_as(sim: &Simulator, key: &str, path_and_query: &str) -> Vec<Value> {
    let client = client();
    let mut url = url::Url::parse(&format!("{}{path_and_query}", sim.base_url())).unwrap();
    let mut out = Vec::new();
    for _ in 0..100_000 {
        let got = get(&client, url.as_str(), Some(key)).await;
        assert_eq!(got.status, 200, "GET {url}: {}", got.body);
        let next = got.body.pointer("/links/next/href").and_then(Value::as_str).map(str::to_owned);
        out.push(got.body);
        match next {
            Some(n) => url = qlik_connector::next_link::keep_query(&url, url::Url::parse(&n).unwrap()),
            None => return out,
        }
    }
    panic!("paging {path_and_query} never ended");
}

/// Every record of `path_and_query`, all pages.
pub async fn records(sim: &Simulator, path_and_query: &str) -> Vec<Value> {
    pages(sim, path_and_query)
        .await
        .into_iter()
        .flat_map(|p| p["data"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The string form of `v[field]` (booleans and numbers included).
pub fn s(v: &Value, field: &str) -> String {
    match &v[field] {
        Value::String(x) => x.clone(),
        Value::Null => panic!("record lacks `{field}`: {v}"),
        other => other.to_string(),
    }
}

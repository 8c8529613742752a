//! Talking to a SCIM server: the Bearer header, list requests, and response parsing.
//!
//! Retrying, backoff, `Retry-After` and rate limiting are not written here: every
//! request goes through [`connector_api::http::RetryingClient`], the plumbing all
//! HTTP connectors share.

use std::sync::Arc;

use connector_api::Result;
use connector_api::http::{
    ClientOptions, Fetched, HttpEvent, RateLimiter, RetryPolicy, RetryingClient, json_body,
};
use connector_api::secret::{ExposeSecret, SecretString};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use crate::config::ScimConfig;
use crate::error::parse_error;

/// The media type of SCIM (RFC 7644 §8.1); servers also accept plain JSON.
const SCIM_JSON: &str = "application/scim+json, application/json";

/// One page of a list request (RFC 7644 §3.4.2).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    /// Matching resources in the whole listing, not just this page.
    pub total_results: u64,
    /// The resources of this page. Servers omit the member on an empty page.
    #[serde(rename = "Resources", default)]
    pub resources: Vec<Value>,
}

/// A SCIM server reached with one token.
#[derive(Debug, Clone)]
pub struct ScimClient {
    http: RetryingClient,
    base: Url,
    token: SecretString,
}

impl ScimClient {
    /// A client for `config`, with the shared retry policy and, when the config asks
    /// for one, a rate limiter shared by every request made through this client.
    pub fn new(config: &ScimConfig) -> Result<Self> {
        let user_agent = format!("data-hub-scim/{}", env!("CARGO_PKG_VERSION"));
        let client = connector_api::http::build_client(&ClientOptions::new(user_agent))?;
        let mut http = RetryingClient::new(client, RetryPolicy::default());
        if let Some(rpm) = config.requests_per_minute {
            http = http.with_limiter(Arc::new(RateLimiter::per_minute(rpm)));
        }
        Ok(ScimClient { http, base: config.base_url()?, token: config.token.clone().into_inner() })
    }

    /// The same client with another retry policy (a quick one for `check`, a fast one
    /// in tests).
    pub fn with_policy(&self, policy: RetryPolicy) -> Self {
        ScimClient { http: self.http.with_policy(policy), ..self.clone() }
    }

    /// `GET {base}/{resource}` with `query`, parsed as `T`. Retries and throttling are
    /// appended to `events`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        resource: &str,
        query: &[(&str, String)],
        events: &mut Vec<HttpEvent>,
    ) -> Result<T> {
        let url = self.url(resource, query);
        let endpoint = format!("GET /{resource}");
        self.http
            .execute(
                &endpoint,
                // The only place the token is exposed: the Authorization header.
                |client| {
                    client.get(url.clone()).bearer_auth(self.token.expose_secret()).header(ACCEPT, SCIM_JSON)
                },
                |fetched: Fetched| {
                    if !fetched.status.is_success() {
                        return Err(parse_error(&endpoint, fetched.status, &fetched.body));
                    }
                    // JSON that breaks off is retried; a whole body that is not JSON (a
                    // login page, an empty 200) fails at once, saying what came back.
                    json_body::parse(&fetched, &endpoint).map_err(|e| match e.hint() {
                        None if !e.is_retryable() => {
                            e.with_hint("The server is not answering as a SCIM server; check `base_url`")
                        }
                        _ => e,
                    })
                },
                events,
            )
            .await
    }

    /// One page of `resource` (`Users`, `Groups`) starting at the 1-based `start_index`.
    pub async fn list(
        &self,
        resource: &str,
        start_index: u64,
        count: u32,
        filter: Option<&str>,
        events: &mut Vec<HttpEvent>,
    ) -> Result<ListResponse> {
        let mut query = vec![("startIndex", start_index.to_string()), ("count", count.to_string())];
        if let Some(filter) = filter {
            query.push(("filter", filter.to_string()));
        }
        self.get(resource, &query, events).await
    }

    /// `{base}/{resource}?{query}`, keeping any path the base URL has (`/scim/v2`).
    fn url(&self, resource: &str, query: &[(&str, String)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(resource);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_keep_the_base_path() {
        for base in ["https://idp.example/scim/v2", "https://idp.example/scim/v2/"] {
            let config = ScimConfig::from_json(&json!({"base_url": base, "token": "t"})).unwrap();
            let client = ScimClient::new(&config).unwrap();
            let url = client.url("Users", &[("startIndex", "51".into()), ("filter", "a gt \"b\"".into())]);
            assert_eq!(url.as_str(), "https://idp.example/scim/v2/Users?startIndex=51&filter=a+gt+%22b%22");
        }
    }

    #[test]
    fn list_response_tolerates_missing_resources() {
        let page: ListResponse =
            serde_json::from_value(json!({"totalResults": 0, "itemsPerPage": 0})).unwrap();
        assert_eq!(page.total_results, 0);
        assert!(page.resources.is_empty());
    }
}

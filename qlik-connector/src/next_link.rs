//! What a next link leaves out, put back.
//!
//! Qlik's licence endpoints answer next links that carry only `limit` and `page`
//! (`…/licenses/assignments?limit=4&page=bmV4dDp…` in Qlik's own examples, see
//! https://qlik.dev/apis/rest/licenses): the page token is a position, and the server
//! does not remember the `filter`, `sort` or `orphans` of the first request. Followed
//! verbatim, such a link pages through another listing (every event instead of those
//! after `consumption_start`, every assignment instead of the orphans). So every link
//! followed keeps the query parameters of the request it came from that it does not
//! name itself; parameters it does name (the cursor, a changed `limit`) are its own.

use url::Url;

/// `next` with each query parameter of `current` whose name `next` lacks appended.
/// Only the query changes: the link's origin and path stay as the origin guard left them.
pub fn keep_query(current: &Url, mut next: Url) -> Url {
    let named: Vec<String> = next.query_pairs().map(|(k, _)| k.into_owned()).collect();
    let missing: Vec<(String, String)> = current
        .query_pairs()
        .filter(|(k, _)| !named.iter().any(|n| n == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if !missing.is_empty() {
        next.query_pairs_mut().extend_pairs(missing);
    }
    next
}

/// Whether `next` pages through the same listing as `current`: the same path, whether or
/// not either carries the `/api` prefix Qlik's gateway serves its REST API under (a
/// rebased link may lack it). A next link is a position in one listing; one that leaves
/// the path (`/api/v1/users` from the consumption listing) would read another endpoint's
/// items into this stream.
pub fn same_listing(current: &Url, next: &Url) -> bool {
    let path = |u: &Url| {
        let p = u.path().trim_end_matches('/');
        p.strip_prefix("/api").filter(|rest| rest.starts_with('/')).unwrap_or(p).to_string()
    };
    path(current) == path(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn a_link_to_another_path_is_another_listing() {
        let current = url("https://t.example/api/v1/licenses/consumption?limit=200");
        assert!(same_listing(&current, &url("https://t.example/api/v1/licenses/consumption?page=2")));
        assert!(same_listing(&current, &url("https://t.example/v1/licenses/consumption/?page=2")));
        assert!(!same_listing(&current, &url("https://t.example/api/v1/users?next=a")));
        assert!(!same_listing(&current, &url("https://t.example/api/v1/licenses/consumptions")));
    }

    #[test]
    fn a_position_only_link_gets_the_filter_and_sort_back() {
        let current = url(
            "https://t.example/api/v1/licenses/consumption?limit=200&sort=%2BendTime&filter=endTime+ge+%222026-01-01T00%3A00%3A00Z%22",
        );
        let next = keep_query(
            &current,
            url("https://t.example/api/v1/licenses/consumption?limit=200&page=bmV4dDoy"),
        );
        let pairs: Vec<(String, String)> = next.query_pairs().into_owned().collect();
        assert_eq!(
            pairs,
            [
                ("limit".into(), "200".into()),
                ("page".into(), "bmV4dDoy".into()),
                ("sort".into(), "+endTime".into()),
                ("filter".into(), "endTime ge \"2026-01-01T00:00:00Z\"".into()),
            ]
        );
    }

    #[test]
    fn the_links_own_parameters_win_and_a_full_link_is_unchanged() {
        let current = url("https://t.example/api/v1/users?limit=100&next=a&sort=%2Bid");
        let full = url("https://t.example/api/v1/users?limit=50&next=b&sort=%2Bid");
        assert_eq!(keep_query(&current, full.clone()), full);
        let after_page = url("https://t.example/api/v1/licenses/assignments?limit=100&orphans=true&page=p1");
        let next =
            keep_query(&after_page, url("https://t.example/api/v1/licenses/assignments?limit=100&page=p2"));
        assert_eq!(next.query(), Some("limit=100&page=p2&orphans=true"));
    }
}

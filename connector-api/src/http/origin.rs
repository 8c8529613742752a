//! Keeping credentials on the configured origin.
//!
//! APIs hand out absolute links (`links.next.href`, `Location`) built from whatever
//! host name the service behind the gateway believes it has: an internal name
//! (`http://license/v1/…`), a regional alias, or a plain-HTTP hop. Following such a
//! link blindly would send the bearer token to that host. An [`OriginGuard`] resolves
//! every link against the origin the operator configured: same-origin links pass,
//! foreign links are rebased onto the configured origin (path and query kept, the API
//! path prefix restored), and links that cannot be rebased are refused.

use url::Url;

use crate::{Error, ErrorKind, Result};

/// Where a link may be followed with credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkTarget {
    /// The link already pointed at the configured origin.
    SameOrigin(Url),
    /// The link named another origin; this is the same path and query on the
    /// configured origin. `from` is the foreign origin, for a log line.
    Rebased {
        /// The rebased URL, on the configured origin.
        url: Url,
        /// The origin the link named (`http://license`).
        from: String,
    },
}

impl LinkTarget {
    /// The URL to request.
    pub fn url(&self) -> &Url {
        match self {
            LinkTarget::SameOrigin(url) | LinkTarget::Rebased { url, .. } => url,
        }
    }

    /// Consumes the target, returning the URL to request.
    pub fn into_url(self) -> Url {
        match self {
            LinkTarget::SameOrigin(url) | LinkTarget::Rebased { url, .. } => url,
        }
    }
}

/// Decides which URLs may carry the connector's credentials.
#[derive(Debug, Clone)]
pub struct OriginGuard {
    base: Url,
    path_prefix: Option<String>,
}

impl OriginGuard {
    /// A guard for the origin (scheme, host, port) of `base`.
    pub fn new(base: &Url) -> Self {
        let mut base = base.clone();
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);
        OriginGuard { base, path_prefix: None }
    }

    /// Restores `prefix` (e.g. `/api`) on rebased links whose path lacks it: services
    /// behind a gateway often link to their own path without the gateway's prefix.
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.path_prefix = Some(format!("/{}", prefix.trim_matches('/')));
        self
    }

    /// The configured origin as `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.base.origin().ascii_serialization()
    }

    /// Whether `url` has exactly the configured scheme, host and port.
    pub fn is_same_origin(&self, url: &Url) -> bool {
        url.origin() == self.base.origin()
    }

    /// Resolves `href` (absolute or relative to `current`) to a URL that may carry
    /// credentials.
    ///
    /// Fails with [`ErrorKind::Source`] when `href` is not a URL, or uses a scheme other
    /// than `http`/`https` (a `javascript:` or `data:` link is not a page).
    pub fn resolve_link(&self, current: &Url, href: &str) -> Result<LinkTarget> {
        let shown = shorten(href);
        let link = current.join(href).map_err(|e| {
            Error::new(
                ErrorKind::Source,
                format!("the source returned a link that is not a URL: `{shown}` ({e})"),
            )
        })?;
        if !matches!(link.scheme(), "http" | "https") || link.cannot_be_a_base() {
            return Err(Error::new(
                ErrorKind::Source,
                format!(
                    "the source returned a `{}:` link (`{shown}`); refusing to follow it with credentials",
                    link.scheme()
                ),
            ));
        }
        if self.is_same_origin(&link) {
            return Ok(LinkTarget::SameOrigin(link));
        }
        let mut path = link.path().to_string();
        if let Some(prefix) = &self.path_prefix
            && path != *prefix
            && !path.starts_with(&format!("{prefix}/"))
        {
            path = format!("{prefix}{path}");
        }
        let mut url = self.base.clone();
        url.set_path(&path);
        url.set_query(link.query());
        Ok(LinkTarget::Rebased { url, from: link.origin().ascii_serialization() })
    }
}

/// Links can be long opaque cursors; error messages show the start.
fn shorten(s: &str) -> String {
    const MAX: usize = 120;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> OriginGuard {
        OriginGuard::new(&Url::parse("https://acme.eu.qlikcloud.com/api/v1/users").unwrap())
            .with_path_prefix("/api")
    }

    fn current() -> Url {
        Url::parse("https://acme.eu.qlikcloud.com/api/v1/users?limit=10").unwrap()
    }

    #[test]
    fn same_origin_passes_unchanged() {
        let t =
            guard().resolve_link(&current(), "https://acme.eu.qlikcloud.com/api/v1/users?next=abc").unwrap();
        assert_eq!(
            t,
            LinkTarget::SameOrigin(
                Url::parse("https://acme.eu.qlikcloud.com/api/v1/users?next=abc").unwrap()
            )
        );
    }

    #[test]
    fn relative_links_resolve_against_current() {
        let t = guard().resolve_link(&current(), "/api/v1/users?next=abc").unwrap();
        assert_eq!(t.url().as_str(), "https://acme.eu.qlikcloud.com/api/v1/users?next=abc");
    }

    #[test]
    fn internal_host_is_rebased_with_prefix_restored() {
        let t = guard()
            .resolve_link(&current(), "http://license/v1/licenses/assignments?limit=4&page=bmV4%3D")
            .unwrap();
        assert_eq!(
            t,
            LinkTarget::Rebased {
                url: Url::parse(
                    "https://acme.eu.qlikcloud.com/api/v1/licenses/assignments?limit=4&page=bmV4%3D"
                )
                .unwrap(),
                from: "http://license".into(),
            }
        );
    }

    #[test]
    fn foreign_host_with_prefix_keeps_path() {
        let t = guard().resolve_link(&current(), "https://evil.example:8443/api/v1/users?next=x").unwrap();
        assert_eq!(t.url().as_str(), "https://acme.eu.qlikcloud.com/api/v1/users?next=x");
    }

    #[test]
    fn scheme_change_is_a_different_origin() {
        let t = guard().resolve_link(&current(), "http://acme.eu.qlikcloud.com/api/v1/users?next=x").unwrap();
        assert!(matches!(t, LinkTarget::Rebased { .. }));
        assert_eq!(t.url().scheme(), "https");
    }

    #[test]
    fn non_http_links_are_refused() {
        let err = guard().resolve_link(&current(), "javascript:alert(1)").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Source);
        assert!(err.message().contains("`javascript:` link"), "{err}");
    }

    #[test]
    fn loopback_port_is_part_of_origin() {
        let g = OriginGuard::new(&Url::parse("http://127.0.0.1:4000").unwrap());
        assert!(g.is_same_origin(&Url::parse("http://127.0.0.1:4000/api/v1/users").unwrap()));
        assert!(!g.is_same_origin(&Url::parse("http://127.0.0.1:4001/api/v1/users").unwrap()));
        assert_eq!(g.origin(), "http://127.0.0.1:4000");
    }
}

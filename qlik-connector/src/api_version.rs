//! The Qlik Cloud API release the connector declares, and the deprecations Qlik announces
//! back.
//!
//! Since the 2026-05 release Qlik versions its REST APIs by quarter (`YYYY-MM`, released in
//! February, May, August and November, each supported for 12 months). A client names the
//! release it knows in the `qlik-api-version` request header; Qlik does not change request or
//! response shapes by it, but uses it to decide which deprecation warnings to return, in
//! response headers. A request without the header, or naming a release Qlik does not support,
//! is served as the oldest supported release: no error, and the warnings meant for that
//! release (https://qlik.dev/apis/versioning,
//! https://qlik.dev/changelog/266-quarterly-api-versioning-2026-11-release).
//!
//! Those pages do not name the response headers, so the connector reads the standard ones:
//! `Deprecation` (RFC 9745, a date as `@` and Unix seconds) and `Sunset` (RFC 8594, an HTTP
//! date after which the functionality may be removed), with a `Link` of relation
//! `deprecation` or `sunset` where one points at the change. Each distinct announcement is
//! surfaced once per run as a warning ([`surface`]) and in `check`.

use std::sync::{Arc, Mutex};

use connector_api::{Error, LogLevel, Message, MessageStream, Result};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use time::OffsetDateTime;
use time::macros::format_description;

use crate::remediation;

/// The release the connector and the simulator are tested against, sent with every request
/// unless the config's `api_version` names another. The config's documentation and the
/// manual name it too (a test keeps them in step).
pub const API_VERSION: &str = "2026-11";

/// The request header naming the release (https://qlik.dev/apis/versioning).
pub const HEADER: &str = "qlik-api-version";

/// The first dated release: versioning started with it.
const FIRST_RELEASE: &str = "2026-05";

/// Announcements kept (and surfaced) per run; a tenant sending a new one with every response
/// gets one more line saying so, not thousands.
const MAX_NOTICES: usize = 5;

/// Longest header value kept, in characters; what Qlik sends is a date or a URL.
const MAX_VALUE: usize = 200;

/// `value` if it names a Qlik API release: `YYYY-MM` with a release month (02, 05, 08, 11),
/// from 2026-05 on. Qlik would serve any other value as its oldest supported release, so a
/// typo is refused here rather than silently sent.
pub fn validate(value: &str) -> Result<String> {
    let value = value.trim();
    let well_formed = value.is_ascii()
        && value.len() == 7
        && value.as_bytes()[4] == b'-'
        && value[..4].bytes().all(|b| b.is_ascii_digit())
        && ["02", "05", "08", "11"].contains(&&value[5..]);
    if !well_formed || value < FIRST_RELEASE {
        return Err(Error::config(
            "api_version",
            format!(
                "`{value}` is not a Qlik API release: releases are named YYYY-MM, quarterly (months 02, 05, 08 and 11), from {FIRST_RELEASE} on"
            ),
        )
        .with_hint(remediation::API_VERSION_INVALID));
    }
    Ok(value.to_string())
}

/// One deprecation as Qlik announced it: the header values, bounded and cleaned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Notice {
    deprecation: Option<String>,
    sunset: Option<String>,
    link: Option<String>,
}

impl Notice {
    /// The announcement in `headers`, if they carry one.
    fn from_headers(headers: &HeaderMap) -> Option<Notice> {
        let value = |name: &str| {
            let raw = headers.get(name)?.to_str().ok()?;
            let clean: String = raw.chars().filter(|c| !c.is_control()).take(MAX_VALUE).collect();
            Some(clean.trim().to_string()).filter(|v| !v.is_empty())
        };
        let link = headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .find(|l| announces(l))
            .and_then(|l| l.split(';').next())
            .map(|target| {
                target.trim().trim_start_matches('<').trim_end_matches('>').chars().take(MAX_VALUE).collect()
            });
        let notice = Notice { deprecation: value("deprecation"), sunset: value("sunset"), link };
        (notice.deprecation.is_some() || notice.sunset.is_some()).then_some(notice)
    }

    /// What Qlik said, with the dates as given and `@` dates also as a day.
    fn describe(&self, version: &str, endpoint: &str) -> String {
        let mut said = Vec::new();
        if let Some(d) = &self.deprecation {
            said.push(match readable_date(d) {
                Some(day) => format!("deprecated since {day} (Deprecation: {d})"),
                None => format!("deprecated (Deprecation: {d})"),
            });
        }
        if let Some(s) = &self.sunset {
            said.push(format!("to be removed on or after {s} (Sunset)"));
        }
        if let Some(l) = &self.link {
            said.push(format!("details at {l}"));
        }
        format!(
            "Qlik Cloud announces a deprecation to clients of API version {version}, first on {endpoint}: {}.",
            said.join("; ")
        )
    }
}

/// Whether `link`, one `<target>; param=value …` entry of a `Link` header, has a relation
/// type `deprecation` (RFC 9745) or `sunset` (RFC 8594), quoted or not, among its `rel`s.
fn announces(link: &str) -> bool {
    link.split(';').skip(1).filter_map(|param| param.trim().strip_prefix("rel=")).any(|rel| {
        rel.trim_matches('"')
            .split_whitespace()
            .any(|r| r.eq_ignore_ascii_case("deprecation") || r.eq_ignore_ascii_case("sunset"))
    })
}

/// An RFC 9745 date (`@1793491200`) as `2026-11-01`; `None` for anything else.
fn readable_date(value: &str) -> Option<String> {
    let seconds: i64 = value.strip_prefix('@')?.parse().ok()?;
    let at = OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    at.format(format_description!("[year]-[month]-[day]")).ok()
}

/// The deprecations a client's responses announced, shared by every clone of the client.
#[derive(Debug)]
pub struct Notices {
    version: String,
    inner: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    notices: Vec<Notice>,
    /// Every warning so far, in the order seen.
    warnings: Vec<String>,
    /// How many of `warnings` were handed to the read already.
    surfaced: usize,
    /// Whether an announcement past [`MAX_NOTICES`] was dropped.
    overflowed: bool,
}

impl Notices {
    /// Notices of a client that sends `version`.
    pub fn new(version: &str) -> Notices {
        Notices { version: version.to_string(), inner: Mutex::default() }
    }

    /// The release the client sends.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Records the announcement in a response of `endpoint`, if it is a new one.
    pub fn observe(&self, headers: &HeaderMap, endpoint: &str) {
        let Some(notice) = Notice::from_headers(headers) else { return };
        let mut seen = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if seen.notices.contains(&notice) {
            return;
        }
        if seen.notices.len() == MAX_NOTICES {
            if !seen.overflowed {
                seen.overflowed = true;
                seen.warnings.push(format!(
                    "Qlik Cloud announced more than {MAX_NOTICES} different deprecations; only the first {MAX_NOTICES} are listed."
                ));
            }
            return;
        }
        let warning = notice.describe(&self.version, endpoint);
        seen.notices.push(notice);
        seen.warnings.push(warning);
    }

    /// Every announcement so far, in the order seen, without the hint
    /// ([`remediation::API_DEPRECATED`]).
    pub fn warnings(&self) -> Vec<String> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).warnings.clone()
    }

    /// The warnings not handed out yet.
    fn take_new(&self) -> Vec<String> {
        let mut seen = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let new = seen.warnings[seen.surfaced..].to_vec();
        seen.surfaced = seen.warnings.len();
        new
    }
}

/// `messages` with each new announcement as a Warn log line with its hint, before the
/// message that follows it (the records of the page that carried it, at the latest) and at
/// the end.
pub fn surface(messages: MessageStream, notices: Arc<Notices>) -> MessageStream {
    let warn = |notices: &Notices| {
        let new = notices.take_new().into_iter();
        new.map(|w| Ok(Message::log(LogLevel::Warn, format!("{w} {}", remediation::API_DEPRECATED))))
            .collect::<Vec<_>>()
    };
    let last = notices.clone();
    messages
        .flat_map(move |message| {
            let mut out = warn(&notices);
            out.push(message);
            futures::stream::iter(out)
        })
        .chain(futures::stream::once(async move { warn(&last) }).flat_map(futures::stream::iter))
        .boxed()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn only_quarterly_releases_from_the_first_are_accepted() {
        for ok in ["2026-05", "2026-08", "2026-11", "2027-02", " 2030-11 "] {
            assert_eq!(validate(ok).unwrap(), ok.trim(), "{ok}");
        }
        for bad in ["2026-02", "2025-11", "2026-06", "2026-5", "latest", "", "2026-11-01", "２０２６-11"]
        {
            let err = validate(bad).unwrap_err();
            assert_eq!(err.context_value("field"), Some("api_version"), "{bad}");
            assert_eq!(err.hint(), Some(remediation::API_VERSION_INVALID), "{bad}");
        }
    }

    #[test]
    fn a_link_announces_by_its_relation_quoted_or_not() {
        for link in [
            r#"<https://qlik.dev/changelog/1>; rel="deprecation""#,
            "<https://qlik.dev/changelog/1>; rel=sunset",
            r#"<https://qlik.dev/changelog/1>; type="text/html"; rel="alternate sunset""#,
        ] {
            assert!(announces(link), "{link}");
        }
        for link in [r#"<https://x/deprecation>; rel="next""#, "<https://x>", "<https://x>; title=sunset"] {
            assert!(!announces(link), "{link}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn each_distinct_announcement_is_one_warning_with_qliks_dates() {
        let notices = Notices::new("2026-11");
        let announced = headers(&[
            ("deprecation", "@1793491200"),
            ("sunset", "Mon, 01 Nov 2027 00:00:00 GMT"),
            ("link", "<https://qlik.dev/changelog/300>; rel=\"deprecation\"; type=\"text/html\""),
        ]);
        notices.observe(&HeaderMap::new(), "GET /api/v1/users");
        for _ in 0..3 {
            notices.observe(&announced, "GET /api/v1/users");
        }
        notices.observe(&announced, "GET /api/v1/groups");
        let warnings = notices.warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        for said in [
            "API version 2026-11",
            "first on GET /api/v1/users",
            "deprecated since 2026-11-01 (Deprecation: @1793491200)",
            "on or after Mon, 01 Nov 2027 00:00:00 GMT (Sunset)",
            "details at https://qlik.dev/changelog/300",
        ] {
            assert!(warnings[0].contains(said), "{said}: {}", warnings[0]);
        }
        assert_eq!(notices.take_new().len(), 1);
        assert!(notices.take_new().is_empty(), "handed out once");
    }

    #[test]
    fn the_manual_and_the_config_name_the_release_sent() {
        let schema = schemars::schema_for!(crate::QlikConfig).to_value();
        let field = &schema["properties"]["api_version"]["description"];
        assert!(field.as_str().unwrap().contains(&format!("{API_VERSION}, the release")), "{field}");
        assert!(include_str!("../docs.md").contains(&format!("names **{API_VERSION}**, the release")));
    }

    #[test]
    fn a_flood_of_announcements_is_bounded() {
        let notices = Notices::new("2026-11");
        for i in 0..50 {
            notices.observe(&headers(&[("sunset", &format!("day {i} {}", "x".repeat(500)))]), "GET /p");
        }
        let warnings = notices.warnings();
        assert_eq!(warnings.len(), MAX_NOTICES + 1);
        assert!(warnings.iter().all(|w| w.len() < 1_000), "values are cut");
        assert!(warnings[MAX_NOTICES].contains("more than 5 different deprecations"));
    }
}

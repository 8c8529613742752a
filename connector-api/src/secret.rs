//! Secrets in connector configs, and the one registry that keeps them out of every text
//! the process writes.
//!
//! Secret config fields are [`Secret`]s: their `Debug` prints a redaction, their value is
//! reachable only through [`ExposeSecret`], which a connector should call in exactly one
//! place (the request header), and their JSON Schema carries `"writeOnly": true` and
//! `"x-secret": true` by itself, so hosts know which fields to resolve from the
//! environment or a file and never to print or store, and no field can forget the mark.
//!
//! Types alone cannot stop a server from echoing a secret back (`"token Bearer eyJ… is
//! expired"`) into an error that is then printed and stored. So every secret value the
//! run learns is [`register`]ed (config secrets when the host resolves them, the API key
//! and its JWT parts, a licence token, destination passwords), and [`scrub`] replaces
//! each occurrence, and every piece of one [`PIECE_LEN`] characters or longer (an echo cut
//! short), with [`MASK`] wherever text leaves the process: every
//! [`Error`](crate::Error) scrubs its message, hint and context when it is built, and the
//! host wraps its log writer, stdout and stderr in a [`ScrubbingWriter`].

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ops::Range;
use std::sync::RwLock;

use aho_corasick::AhoCorasick;
use schemars::{Schema, SchemaGenerator, json_schema};
pub use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// A secret config value: a [`SecretString`] whose JSON Schema marks it secret.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(SecretString);

impl Secret {
    /// The value as a [`SecretString`], for code that keeps it.
    pub fn into_inner(self) -> SecretString {
        self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(SecretString::from(value))
    }
}

impl ExposeSecret<str> for Secret {
    fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl schemars::JsonSchema for Secret {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Secret".into()
    }

    /// A non-empty string, `"writeOnly": true` and `"x-secret": true`.
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "minLength": 1,
            "writeOnly": true,
            "x-secret": true,
        })
    }
}

/// Whether a property schema is marked secret.
pub fn is_secret(property_schema: &Value) -> bool {
    property_schema.get("x-secret").and_then(Value::as_bool).unwrap_or(false)
}

/// Names of the top-level properties that a config schema marks secret.
pub fn secret_fields(config_schema: &Value) -> Vec<String> {
    config_schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| props.iter().filter(|(_, s)| is_secret(s)).map(|(name, _)| name.clone()).collect())
        .unwrap_or_default()
}

/// Copies `config` with every secret top-level field replaced by `"**redacted**"`, for
/// printing or storing a config.
pub fn redact(config_schema: &Value, config: &Value) -> Value {
    let mut out = config.clone();
    if let Some(obj) = out.as_object_mut() {
        for field in secret_fields(config_schema) {
            if let Some(v) = obj.get_mut(&field) {
                *v = Value::String("**redacted**".into());
            }
        }
    }
    out
}

/// What a secret is replaced with.
pub const MASK: &str = "****";

/// Values shorter than this (after trimming) are not registered: one to three characters
/// are letters and ordinary words (`a`, `id`, `the`), masking them would garble every
/// message, and a secret that short protects nothing. Every longer value is masked
/// wherever it occurs, inside a longer word too: a short password such as `hub1` then
/// costs a few odd-looking words, but is never shown whole.
pub const MIN_SECRET_LEN: usize = 4;

/// The longest piece of a secret that may show: longer secrets are masked piece by piece
/// (see [`register`]), so no run of this many characters of one survives, however the
/// text around it was cut.
pub const PIECE_LEN: usize = 16;

/// The registered values and a matcher over them, rebuilt on each new value (rare: a
/// run registers a handful).
struct Registry {
    values: BTreeSet<String>,
    matcher: Option<AhoCorasick>,
}

static REGISTRY: RwLock<Registry> = RwLock::new(Registry { values: BTreeSet::new(), matcher: None });

/// Remembers `value` (trimmed) as a secret for the rest of the process, so [`scrub`]
/// masks it, and every piece of it [`PIECE_LEN`] characters long. A JWT also registers
/// each of its dot-separated parts, since a server that splits the token echoes them
/// alone. Values shorter than [`MIN_SECRET_LEN`] are ignored.
pub fn register(value: &str) {
    let value = value.trim();
    let mut values = vec![value];
    if is_jwt(value) {
        values.extend(value.split('.'));
    }
    let mut registry = REGISTRY.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = registry.values.len();
    for value in values.into_iter().filter(|v| v.chars().count() >= MIN_SECRET_LEN) {
        registry.values.extend(pieces(value).map(str::to_string));
    }
    if registry.values.len() == before {
        return;
    }
    registry.matcher = AhoCorasick::new(&registry.values).ok();
}

/// What [`scrub`] looks for to mask `value`: the value itself when it is shorter than
/// [`PIECE_LEN`], otherwise every piece of it that long. Overlapping matches merge, so the
/// whole value is masked as one, and an echo cut anywhere (a gateway that shortens the
/// token, a message limit) still has every piece of [`PIECE_LEN`] or more masked.
fn pieces(value: &str) -> impl Iterator<Item = &str> {
    let starts: Vec<usize> = value.char_indices().map(|(i, _)| i).chain([value.len()]).collect();
    let windows = starts.len().saturating_sub(PIECE_LEN).max(1);
    (0..windows).map(move |i| &value[starts[i]..starts[(i + PIECE_LEN).min(starts.len() - 1)]])
}

/// Registers the credentials a URL carries (see [`url_credentials`]), both as written
/// and percent-decoded, since either form may be echoed.
pub fn register_url_credentials(url: &str) {
    for range in url_credentials(url) {
        let raw = &url[range];
        register(raw);
        register(&percent_encoding::percent_decode_str(raw).decode_utf8_lossy());
    }
}

/// `text` with every registered secret replaced by [`MASK`]; borrowed when nothing was
/// found.
pub fn scrub(text: &str) -> Cow<'_, str> {
    let registry = REGISTRY.read().unwrap_or_else(|poisoned| poisoned.into_inner());
    let Some(matcher) = &registry.matcher else { return Cow::Borrowed(text) };
    let mut spans: Vec<Range<usize>> = matcher.find_overlapping_iter(text).map(|m| m.range()).collect();
    if spans.is_empty() {
        return Cow::Borrowed(text);
    }
    spans.sort_by_key(|r| r.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        if span.end <= at {
            continue;
        }
        if span.start >= at {
            out.push_str(&text[at..span.start]);
            out.push_str(MASK);
        }
        at = span.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// [`scrub`] for an owned string, reusing it when there is nothing to mask.
pub fn scrub_owned(text: String) -> String {
    match scrub(&text) {
        Cow::Borrowed(_) => text,
        Cow::Owned(scrubbed) => scrubbed,
    }
}

/// Byte ranges of the credentials in `url`: the password of its user info
/// (`scheme://user:PASSWORD@host…`) and the value of every `…password=` query parameter.
///
/// Found by hand rather than with a URL parser, so URLs a parser rejects (several hosts
/// `h1,h2`, a port out of range, a stray bracket) still have their password found. The
/// user info ends at the last `@`: a password with an unencoded `/`, `?` or `@` is still
/// covered, and a stray `@` further on masks too much rather than too little.
pub fn url_credentials(url: &str) -> Vec<Range<usize>> {
    let Some(scheme_end) = url.find(':') else { return Vec::new() };
    let after_scheme = &url[scheme_end + 1..];
    let rest_start = url.len() - after_scheme.trim_start_matches('/').len();
    let rest = &url[rest_start..];
    let mut ranges = Vec::new();
    let mut query_from = rest_start;
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        if let Some(colon) = userinfo.find(':') {
            ranges.push(rest_start + colon + 1..rest_start + at);
        }
        query_from = rest_start + at;
    }
    if let Some(q) = url[query_from..].find('?') {
        let query_start = query_from + q + 1;
        let query_end = url[query_start..].find('#').map_or(url.len(), |h| query_start + h);
        let mut pos = query_start;
        for pair in url[query_start..query_end].split('&') {
            if let Some((key, _)) = pair.split_once('=')
                && key.to_ascii_lowercase().ends_with("password")
            {
                ranges.push(pos + key.len() + 1..pos + pair.len());
            }
            pos += pair.len() + 1;
        }
    }
    ranges.retain(|r| !r.is_empty());
    ranges
}

/// Whether `value` looks like a JWT: three base64url parts, the header a JSON object.
fn is_jwt(value: &str) -> bool {
    let parts: Vec<&str> = value.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// An [`std::io::Write`] that scrubs what it passes on. Each `write` is scrubbed on its
/// own, so hand it whole lines or events (`tracing`'s formatter writes one event per
/// call; `write!` passes each argument whole); a secret split across two writes still has
/// each part of [`PIECE_LEN`] characters or more masked.
pub struct ScrubbingWriter<W> {
    inner: W,
}

impl<W: std::io::Write> ScrubbingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        ScrubbingWriter { inner }
    }
}

impl<W: std::io::Write> std::io::Write for ScrubbingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.inner.write_all(scrub(text).as_bytes())?,
            Err(_) => self.inner.write_all(scrub(&String::from_utf8_lossy(buf)).as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_field_marks_itself_in_the_schema_and_hides_in_debug() {
        #[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
        #[allow(dead_code)]
        struct Config {
            token: Secret,
            key: Option<Secret>,
            name: String,
        }
        let schema = schemars::schema_for!(Config).to_value();
        assert_eq!(secret_fields(&schema), ["key", "token"]);
        assert_eq!(schema["properties"]["token"]["writeOnly"], true);
        let config: Config =
            serde_json::from_value(serde_json::json!({"token": "canary-token-1", "key": null, "name": "n"}))
                .unwrap();
        assert!(!format!("{config:?}").contains("canary-token-1"));
        assert_eq!(config.token.expose_secret(), "canary-token-1");
    }
    use serde_json::json;

    #[test]
    fn redact_replaces_only_secret_fields() {
        let schema =
            json!({"properties": {"key": {"type": "string", "x-secret": true}, "url": {"type": "string"}}});
        let config = json!({"key": "s3cr3t", "url": "https://x"});
        assert_eq!(secret_fields(&schema), vec!["key".to_string()]);
        assert_eq!(redact(&schema, &config), json!({"key": "**redacted**", "url": "https://x"}));
    }

    #[test]
    fn scrub_masks_every_registered_value_wherever_it_occurs() {
        register("  scrub-canary-5d1e\n");
        assert_eq!(scrub("token scrub-canary-5d1e is expired"), "token **** is expired");
        assert_eq!(scrub("x=scrub-canary-5d1e&y=scrub-canary-5d1e"), "x=****&y=****");
        assert!(matches!(scrub("nothing to hide"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_jwt_is_masked_whole_and_by_its_parts() {
        let jwt = "eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJzY3J1Yi10ZXN0In0.c2NydWItc2lnbmF0dXJl";
        register(jwt);
        assert_eq!(scrub(&format!("Bearer {jwt}")), "Bearer ****");
        let (header_and_payload, _) = jwt.rsplit_once('.').unwrap();
        assert_eq!(scrub(&format!("token {header_and_payload}… is expired")), "token ****… is expired");
        assert_eq!(scrub("sig c2NydWItc2lnbmF0dXJl"), "sig ****");
    }

    #[test]
    fn short_keys_are_never_shown_and_trivial_values_are_ignored() {
        register("q7z!");
        assert_eq!(scrub("key q7z! rejected; xq7z!x"), "key **** rejected; x****x");
        register("ab");
        register("   ");
        assert_eq!(scrub("ab abc a"), "ab abc a", "values under MIN_SECRET_LEN are not masked");
    }

    #[test]
    fn an_echo_cut_anywhere_shows_no_piece_of_the_secret() {
        let secret = "cut-canary-0123456789abcdefghij";
        register(secret);
        assert_eq!(scrub(&format!("token {}… is expired", &secret[..20])), "token ****… is expired");
        assert_eq!(scrub(&format!("…{} is expired", &secret[9..])), "…**** is expired");
        assert_eq!(scrub(&secret[..PIECE_LEN - 1]), &secret[..PIECE_LEN - 1], "a shorter piece may show");
    }

    #[test]
    fn pieces_cover_the_value_by_characters() {
        assert_eq!(pieces("short").collect::<Vec<_>>(), ["short"]);
        let value = "ä".repeat(PIECE_LEN + 2);
        let all: Vec<&str> = pieces(&value).collect();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|p| p.chars().count() == PIECE_LEN));
    }

    #[test]
    fn overlapping_secrets_are_masked_once() {
        register("overlap-one-7c2");
        register("one-7c2-overlap-two");
        assert_eq!(scrub("[overlap-one-7c2-overlap-two]"), "[****]");
    }

    #[test]
    fn url_passwords_are_found_in_urls_a_parser_rejects() {
        fn found(url: &str) -> Vec<&str> {
            url_credentials(url).into_iter().map(|r| &url[r]).collect()
        }
        assert_eq!(found("postgres://hub:PW1@h1,h2/hub"), ["PW1"]);
        assert_eq!(found("postgres://hub:PW2@h:99999/hub"), ["PW2"]);
        assert_eq!(found("postgres://hub:p/w?x@y@[::1/hub"), ["p/w?x@y"]);
        assert_eq!(
            found("postgresql://hub@h/hub?sslmode=require&password=PW3&sslpassword=PW4#x"),
            ["PW3", "PW4"]
        );
        assert_eq!(found("postgres://hub:@h/hub"), Vec::<&str>::new());
        assert_eq!(found("postgres://hub@h/hub"), Vec::<&str>::new());
        assert_eq!(found("sqlite:./data@home.db"), Vec::<&str>::new());
    }

    #[test]
    fn url_credentials_are_registered_as_written_and_decoded() {
        register_url_credentials("postgres://hub:p%40ss-url-9f@h/hub");
        assert_eq!(scrub("p@ss-url-9f and p%40ss-url-9f"), "**** and ****");
    }

    #[test]
    fn scrubbing_writer_masks_what_it_passes_on() {
        use std::io::Write;
        register("writer-canary-31b");
        let mut out = ScrubbingWriter::new(Vec::new());
        let echoed = "writer-canary-31b";
        writeln!(out, "error: {echoed} was echoed").unwrap();
        assert_eq!(String::from_utf8(out.inner).unwrap(), "error: **** was echoed\n");
    }

    #[test]
    fn secret_string_debug_hides_value() {
        let s = SecretString::from("canary-123");
        assert!(!format!("{s:?}").contains("canary-123"));
    }
}

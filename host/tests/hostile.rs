//! Hostile servers and hostile inputs, driven through the real `connector-host` binary: a
//! tenant that echoes the key back, answers HTML or never stops sending, a listing that
//! never ends, a config that is a device or a FIFO, a destination URL a parser rejects.
//! Every case must end quickly with the documented exit code and a message that says what
//! happened and what to do, and no secret may appear on stdout, stderr or in the
//! destination.

mod common;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::watched::{Run, watched};
use tests::qlik_sim::{Faults, Hostile, SimConfig, Simulator};

/// No case may take longer than this.
const DEADLINE: Duration = Duration::from_secs(60);

/// Runs `connector-host args` with `env` added, within [`DEADLINE`].
async fn host(args: &[&str], env: &[(&str, OsString)]) -> Run {
    watched(args, env, DEADLINE).await
}

/// A Qlik config for `sim` in `dir` whose key comes from the file `key` (the admin key).
fn qlik_config(dir: &Path, sim: &Simulator) -> String {
    std::fs::write(dir.join("key"), &sim.keys().admin).unwrap();
    write_config(dir, &sim.base_url(), "{ file = \"key\" }")
}

/// A Qlik config file in `dir` with `tenant_url` and `api_key` written as given.
fn write_config(dir: &Path, tenant_url: &str, api_key: &str) -> String {
    let path = dir.join("qlik.toml");
    std::fs::write(
        &path,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{tenant_url}\"\napi_key = {api_key}\nrequests_per_minute = 1000000\nrequest_timeout = 5\n"
        ),
    )
    .unwrap();
    path.display().to_string()
}

/// The secrets a run against `sim` knows: the admin key, each part of it (a JWT), and the
/// tenant's licence token.
fn secrets_of(sim: &Simulator) -> Vec<String> {
    let key = sim.keys().admin.clone();
    let mut secrets: Vec<String> = key.split('.').map(str::to_string).collect();
    secrets.push(key);
    secrets.push(sim.license_key().to_string());
    secrets
}

/// How long a piece of a secret may show: a cut-off echo must not leave a telling prefix.
const PIECE: usize = 16;

/// Asserts that no secret, nor any piece of one [`PIECE`] characters long, appears in the
/// run's output or in the files at `stored`.
fn assert_no_secret(run: &Run, secrets: &[String], stored: &[PathBuf]) {
    let mut texts =
        vec![("stdout".to_string(), run.stdout.clone()), ("stderr".to_string(), run.stderr.clone())];
    for path in stored.iter().filter(|p| p.exists()) {
        texts.push((
            path.display().to_string(),
            String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned(),
        ));
    }
    for secret in secrets {
        let pieces: Vec<&str> = (0..=secret.len().saturating_sub(PIECE))
            .map(|i| &secret[i..(i + PIECE).min(secret.len())])
            .collect();
        for (name, text) in &texts {
            if let Some(piece) = pieces.iter().find(|p| text.contains(**p)) {
                panic!("{name} shows `{piece}`, a piece of a secret:\n{}", run.output());
            }
        }
    }
}

/// The SQLite file and its journals, where a stored secret would sit.
fn sqlite_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-journal"].iter().map(|s| PathBuf::from(format!("{}{s}", db.display()))).collect()
}

/// A run of the `users` stream against a simulator answering a [`Hostile`] mode.
struct Case {
    run: Run,
    sim: Simulator,
    /// The SQLite files the run wrote, checked for secrets.
    stored: Vec<PathBuf>,
    _dir: tempfile::TempDir,
}

impl Case {
    /// Asserts that no secret appears in the output or the destination.
    fn assert_no_secret(&self) {
        assert_no_secret(&self.run, &secrets_of(&self.sim), &self.stored);
    }
}

/// Runs the `users` stream against a simulator answering `hostile`, into a fresh SQLite file.
async fn run_users_against(hostile: Hostile) -> Case {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults { hostile: Some(hostile), ..Faults::default() });
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    let run = host(&["run", "--config", &config, "--dest", &dest, "--streams", "users"], &[]).await;
    Case { run, sim, stored: sqlite_files(&db), _dir: dir }
}

#[tokio::test]
async fn a_401_that_echoes_the_key_shows_and_stores_no_part_of_it() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults {
        hostile: Some(Hostile::EchoAuthorization { path: "/api".into() }),
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    let secrets = secrets_of(&sim);
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["run", "--config", &config, "--dest", &dest];
        args.extend_from_slice(extra);
        let run = host(&args, &[]).await;
        assert_eq!(run.code, 3, "a rejected key exits 3:\n{}", run.output());
        assert!(run.stdout.contains("rejected the API key") || run.stderr.contains("rejected the API key"));
        assert!(run.output().contains("is expired"), "the tenant's own words are kept:\n{}", run.output());
        assert!(run.output().contains("Generate a new one"), "says what to do:\n{}", run.output());
        assert!(run.output().contains("****"), "the echoed key is masked:\n{}", run.output());
        assert_no_secret(&run, &secrets, &sqlite_files(&db));
        assert!(run.elapsed < Duration::from_secs(20), "{:?}", run.elapsed);
    }
    let run = host(&["check", "--config", &config], &[]).await;
    assert_eq!(run.code, 3, "{}", run.output());
    assert_no_secret(&run, &secrets, &[]);
}

#[tokio::test]
async fn an_html_login_page_is_named_and_not_retried() {
    let case = run_users_against(Hostile::login_page("/api")).await;
    let out = case.run.output();
    assert_eq!(case.run.code, 4, "{out}");
    assert!(out.contains("answered HTTP 200 with text/html; charset=utf-8"), "{out}");
    assert!(out.contains("<title>Sign in - Corporate SSO</title>"), "the first bytes are shown:\n{out}");
    assert!(out.contains("login page"), "says what to check:\n{out}");
    assert!(!out.contains("request_timeout"), "{out}");
    let requests = case.sim.requests().len();
    assert!(requests <= 3, "a complete non-JSON body is not retried: {requests} requests");
    case.assert_no_secret();
    assert!(case.run.elapsed < Duration::from_secs(20), "{:?}", case.run.elapsed);
}

#[tokio::test]
async fn empty_204_and_latin1_bodies_say_what_came_back() {
    let cases: [(u16, Option<&str>, &[u8], &str); 3] = [
        (204, None, b"", "answered HTTP 204 with an empty body where JSON was expected"),
        (200, Some("application/json"), b"", "answered HTTP 200 with an empty body where JSON was expected"),
        (
            200,
            Some("text/plain; charset=iso-8859-1"),
            b"Acc\xe8s refus\xe9",
            "not UTF-8 text, not JSON: \"Acc\u{FFFD}s refus\u{FFFD}\"",
        ),
    ];
    for (status, content_type, body, said) in cases {
        let hostile = Hostile::Canned {
            path: "/api".into(),
            status,
            content_type: content_type.map(str::to_string),
            body: body.to_vec(),
        };
        let case = run_users_against(hostile).await;
        let out = case.run.output();
        assert_eq!(case.run.code, 4, "{out}");
        assert!(out.contains(said), "{said}:\n{out}");
        assert!(!out.contains("request_timeout"), "{out}");
        assert!(case.sim.requests().len() <= 3, "not retried: {} requests", case.sim.requests().len());
        case.assert_no_secret();
    }
}

#[tokio::test]
async fn a_body_that_never_ends_is_cut_off_at_the_cap() {
    let case = run_users_against(Hostile::EndlessBody { path: "/api/v1/users".into() }).await;
    let (run, out) = (&case.run, case.run.output());
    assert_eq!(run.code, 4, "{out}");
    assert!(out.contains("with a body of more than 64 MiB (application/json); stopped reading it"), "{out}");
    assert!(out.contains("protects memory"), "{out}");
    eprintln!("endless body: failed after {:?}, peak RSS {:.0} MiB", run.elapsed, run.peak_rss_mib);
    // A run's own footprint is about 45 MiB; the body may add its cap, and no more.
    assert!(run.peak_rss_mib < 45.0 + 64.0 + 40.0, "memory stays bounded: {:.0} MiB", run.peak_rss_mib);
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
    case.assert_no_secret();
}

#[tokio::test]
async fn a_listing_of_empty_pages_with_fresh_links_ends() {
    let case = run_users_against(Hostile::EndlessListing {
        path: "/api/v1/users".into(),
        records_per_page: 0,
        reported_total: None,
    })
    .await;
    let out = case.run.output();
    assert_eq!(case.run.code, 4, "{out}");
    assert!(
        out.contains("returned 20 pages in a row without records, each naming another next page"),
        "{out}"
    );
    // Both ends of the users listing are bounded, the second starting after the first's
    // second page.
    let listing = case.sim.requests().iter().filter(|r| r.path == "/api/v1/users").count();
    assert!(listing <= 2 * 21, "bounded: {listing} requests");
    assert!(case.run.elapsed < Duration::from_secs(20), "{:?}", case.run.elapsed);
    case.assert_no_secret();
}

#[tokio::test]
async fn a_listing_past_the_total_it_reports_ends() {
    let case = run_users_against(Hostile::EndlessListing {
        path: "/api/v1/users".into(),
        records_per_page: 5,
        reported_total: Some(10),
    })
    .await;
    let out = case.run.output();
    assert_eq!(case.run.code, 4, "{out}");
    assert!(out.contains("listed 20 records and names a next page, but reports only 10 in all"), "{out}");
    let users: Vec<_> = case.sim.requests().into_iter().filter(|r| r.path == "/api/v1/users").collect();
    let from_below = users.iter().filter(|r| r.query.contains("sort=%2Bid")).count();
    assert_eq!(from_below, 4, "stops once past the total by more than a page");
    assert!(users.len() <= 2 * 4, "the other end is bounded too: {}", users.len());
    case.assert_no_secret();
}

#[tokio::test]
async fn a_user_nested_200_levels_deep_names_the_limit() {
    let case = run_users_against(Hostile::deeply_nested_user(200)).await;
    let out = case.run.output();
    assert_eq!(case.run.code, 4, "{out}");
    assert!(out.contains("nested more than 128 levels deep, past serde_json's recursion limit"), "{out}");
    assert!(!out.contains("is not a JSON object"), "{out}");
    case.assert_no_secret();
}

/// Runs `check` with `config`, expecting a config error (exit 2) that says `said`.
async fn assert_config_error(config: &str, env: &[(&str, OsString)], said: &str) {
    let run = host(&["check", "--config", config], env).await;
    assert_eq!(run.code, 2, "{}", run.output());
    assert!(run.stderr.contains(said), "{said}:\n{}", run.output());
    assert!(run.elapsed < Duration::from_secs(10), "fails fast: {:?}", run.elapsed);
}

#[tokio::test]
async fn configs_and_key_files_that_are_devices_or_fifos_fail_fast() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let fifo = fifo.display().to_string();
    for config in ["/dev/zero", fifo.as_str()] {
        assert_config_error(
            config,
            &[],
            &format!("cannot read config file {config}: it is a device, FIFO or socket, not a regular file"),
        )
        .await;
    }
    assert_config_error(&dir.path().display().to_string(), &[], "it is a directory, not a regular file")
        .await;
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; 2 * 1024 * 1024]).unwrap();
    assert_config_error(&big.display().to_string(), &[], "it is larger than 1024 KiB").await;
    for key_file in ["/dev/urandom", fifo.as_str()] {
        let config = write_config(
            dir.path(),
            "https://acme.eu.qlikcloud.com",
            &format!("{{ file = \"{key_file}\" }}"),
        );
        assert_config_error(
            &config,
            &[],
            &format!("config.api_key: cannot read secret file {key_file}: it is a device, FIFO or socket"),
        )
        .await;
    }
}

#[tokio::test]
async fn odd_keys_and_urls_get_their_own_messages() {
    use std::os::unix::ffi::OsStringExt;
    let dir = tempfile::tempdir().unwrap();
    let tenant = "https://acme.eu.qlikcloud.com";
    let config = write_config(dir.path(), tenant, "{ env = \"HOSTILE_KEY\" }");
    assert_config_error(
        &config,
        &[("HOSTILE_KEY", OsString::from_vec(b"key-\xff\xfe".to_vec()))],
        "environment variable HOSTILE_KEY is not valid UTF-8 text",
    )
    .await;
    assert_config_error(
        &config,
        &[("HOSTILE_KEY", "    ".into())],
        "environment variable HOSTILE_KEY holds only whitespace",
    )
    .await;
    let config = write_config(dir.path(), tenant, "\"   \"");
    assert_config_error(&config, &[], "config.api_key: is blank").await;
    let config = write_config(dir.path(), tenant, "{ env = \"HOSTILE_KEY\", file = \"key\" }");
    assert_config_error(
        &config,
        &[],
        "a secret reference is { env = \"VAR\" } or { file = \"PATH\" }, not both",
    )
    .await;
    let config = write_config(dir.path(), "javascript:alert(1)", "\"k3y-for-a-bad-url\"");
    assert_config_error(&config, &[], "tenant_url: uses `javascript:`, which is not a web address").await;
}

#[tokio::test]
async fn destination_passwords_never_show_whatever_the_url() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim);
    let password = "pg-Secret-4b7e";
    // (destination, exit code): a URL that does not parse is a usage error (2), one whose
    // servers refuse the connection a destination error (6).
    let cases = [
        (format!("postgres://hub:{password}@127.0.0.1:1,127.0.0.1:2/hub"), 6),
        (format!("postgres://hub:{password}@127.0.0.1:99999/hub"), 2),
        (format!("postgres://hub:{password}@[::1/hub"), 2),
        (format!("postgresql://hub@127.0.0.1:1/hub?password={password}"), 6),
    ];
    for (dest, code) in cases {
        for extra in [&[][..], &["--json"][..]] {
            let mut args = vec!["run", "--config", &config, "--dest", &dest, "--streams", "users"];
            args.extend_from_slice(extra);
            let run = host(&args, &[]).await;
            let out = run.output();
            assert_eq!(run.code, code, "{dest}:\n{out}");
            assert!(!out.contains(password), "{dest}:\n{out}");
            assert!(out.contains("****"), "the URL is shown with its password masked:\n{out}");
            assert!(run.elapsed < Duration::from_secs(30), "{dest}: {:?}", run.elapsed);
        }
    }
}

/// With a real PostgreSQL and a password in the destination URL (the test server trusts
/// the role, so the password is carried, not checked): a good run and one whose tenant
/// echoes the key show the URL masked (summary, `--json`, log) and leave neither the
/// password nor any piece of the key in `_runs`.
#[tokio::test]
async fn a_postgres_password_in_the_url_is_never_shown_or_stored() {
    let Some(admin_url) = common::fresh_postgres_database("hostile_pw").await else { return };
    let (admin, conn) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let password = "pw-Hostile-3e9a71c5".to_string();
    let mut dest = url::Url::parse(&admin_url).unwrap();
    dest.set_password(Some(&password)).unwrap();
    let role = dest.username().to_string();

    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim);
    let mut secrets = secrets_of(&sim);
    secrets.push(password.clone());
    let args = ["run", "--config", &config, "--dest", dest.as_str(), "--streams", "users", "--json"];
    let good = host(&args, &[]).await;
    assert_eq!(good.code, 0, "{}", good.output());
    assert!(good.output().contains(&format!("{role}:****@")), "the URL is shown masked:\n{}", good.output());
    assert_no_secret(&good, &secrets, &[]);

    sim.set_faults(Faults {
        hostile: Some(Hostile::EchoAuthorization { path: "/api".into() }),
        ..Faults::default()
    });
    let echoed = host(&args, &[]).await;
    assert_eq!(echoed.code, 3, "{}", echoed.output());
    assert_no_secret(&echoed, &secrets, &[]);
    let runs: Vec<String> = admin
        .query("SELECT row_to_json(r)::text FROM datahub._runs r", &[])
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(runs.len(), 2, "both runs are recorded");
    let stored = Run { stdout: runs.join("\n"), stderr: String::new(), ..echoed };
    assert!(stored.stdout.contains("****"), "the echoed key is stored masked: {}", stored.stdout);
    assert_no_secret(&stored, &secrets, &[]);
}

/// A small tenant whose `path` answers 200 with the JSON `body`, whatever is asked.
async fn answering(path: &str, body: &str) -> Simulator {
    let hostile = Hostile::Canned {
        path: path.into(),
        status: 200,
        content_type: Some("application/json".into()),
        body: body.as_bytes().to_vec(),
    };
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    sim.set_faults(Faults { hostile: Some(hostile), ..Faults::default() });
    sim
}

/// `users` answered with `body` (a one-page listing) into SQLite and, when a server is
/// configured, PostgreSQL: the binary's run and what each destination's `users` holds
/// as `id|name` lines.
async fn users_from(body: &str) -> Vec<(&'static str, Run, Vec<String>)> {
    let sim = answering("/api/v1/users", body).await;
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let sqlite = format!("sqlite:{}", db.display());
    let mut outcomes = Vec::new();
    let run = host(&["run", "--config", &config, "--dest", &sqlite, "--streams", "users"], &[]).await;
    let rows: Vec<String> = rusqlite::Connection::open(&db)
        .unwrap()
        .prepare("SELECT id || '|' || coalesce(name, '') FROM qlik_sense__users ORDER BY id")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .unwrap_or_default();
    outcomes.push(("SQLite", run, rows));
    if let Some(url) = common::fresh_postgres_database("hostile_rows").await {
        let run = host(&["run", "--config", &config, "--dest", &url, "--streams", "users"], &[]).await;
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let rows = client
            .query("SELECT id || '|' || coalesce(name, '') FROM qlik_sense.users ORDER BY id", &[])
            .await
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        outcomes.push(("PostgreSQL", run, rows));
    }
    outcomes
}

/// A user without an id, or with a date that is not one, fails the stream on every
/// destination alike, naming the record and the field; nothing of it is stored.
#[tokio::test]
async fn records_without_a_key_or_with_a_bad_date_fail_alike_everywhere() {
    for (body, said) in [
        (
            r#"{"data":[{"id":"u1","name":"Ann"},{"id":null,"name":"Bob"}],"links":{}}"#,
            "stream users: record 2, field `id`: the primary key is null",
        ),
        (
            r#"{"data":[{"name":"Cy"}],"links":{}}"#,
            "stream users: record 1, field `id`: the primary key is null",
        ),
        (
            r#"{"data":[{"id":"u1","createdAt":"yesterday at noon"}],"links":{}}"#,
            "stream users: record 1, field `created_at`: not an RFC 3339 timestamp (\"yesterday at noon\")",
        ),
    ] {
        for (dest, run, rows) in users_from(body).await {
            assert_eq!(run.code, 4, "{dest}: {}", run.output());
            assert!(run.stderr.contains(said), "{dest}: expected {said}\n{}", run.output());
            assert!(rows.is_empty(), "{dest}: nothing stored: {rows:?}");
        }
    }
}

/// A numeric id is a valid key, kept as text; a NUL in a name (PostgreSQL refuses it in
/// text) lands as U+FFFD on every destination.
#[tokio::test]
async fn numeric_ids_and_nul_characters_land_alike_everywhere() {
    for (dest, run, rows) in
        users_from(r#"{"data":[{"id":42,"name":"A\u0000B"},{"id":"u7","name":"C"}],"links":{}}"#).await
    {
        assert_eq!(run.code, 0, "{dest}: {}", run.output());
        assert_eq!(rows, ["42|A\u{FFFD}B", "u7|C"], "{dest}");
    }
}

/// `license_consumption` answered with `body` on every request, into a fresh SQLite file:
/// the run, the rows stored, and the paths the simulator was asked for.
async fn consumption_from(body: &str) -> (Run, i64, Vec<String>) {
    let sim = answering("/api/v1/licenses/consumption", body).await;
    let dir = tempfile::tempdir().unwrap();
    let config = qlik_config(dir.path(), &sim);
    let db = dir.path().join("hub.db");
    let dest = format!("sqlite:{}", db.display());
    let run =
        host(&["run", "--config", &config, "--dest", &dest, "--streams", "license_consumption"], &[]).await;
    let rows = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM qlik_sense__license_consumption", [], |r| r.get(0))
        .unwrap_or(0);
    (run, rows, sim.requests().into_iter().map(|r| r.path).collect())
}

/// An event whose `endTime` (the incremental cursor) is missing, null or not a time fails
/// the stream naming the event and the field: loaded, it would lie outside every later
/// incremental window and never be updated or removed (H5).
#[tokio::test]
async fn an_event_without_a_usable_cursor_fails_its_stream_naming_it() {
    for (end_time, found) in [
        (None, "it is missing or null"),
        (Some("null"), "it is missing or null"),
        (Some("1767225600"), "it is a number"),
        (Some(r#"{"at":"2026-01-01T00:00:00Z"}"#), "it is an object"),
    ] {
        let bad = match end_time {
            Some(v) => format!(r#"{{"id":"e2","userId":"u","endTime":{v}}}"#),
            None => r#"{"id":"e2","userId":"u"}"#.to_string(),
        };
        let body = format!(
            r#"{{"data":[{{"id":"e1","userId":"u","endTime":"2026-01-01T00:00:00Z"}},{bad}],"links":{{}}}}"#
        );
        let (run, rows, _) = consumption_from(&body).await;
        assert_eq!(run.code, 4, "{found}: {}", run.output());
        let said = format!(
            "stream license_consumption: record id=\"e2\" has no usable `end_time`, the stream's incremental cursor: {found}"
        );
        assert!(run.output().contains(&said), "expected {said}\n{}", run.output());
        assert_eq!(rows, 0, "{found}: nothing stored");
    }
}

/// A next link that leaves the listing's path (`//evil.example:1/api/v1/users` from the
/// consumption listing) is refused, not rebased onto the tenant and read into the
/// consumption table (H5).
#[tokio::test]
async fn a_next_link_to_another_endpoint_is_refused() {
    let body = r#"{"data":[{"id":"e1","userId":"u","endTime":"2026-01-01T00:00:00Z"}],"links":{"next":{"href":"//evil.example:1/api/v1/users?next=x"}}}"#;
    let (run, rows, paths) = consumption_from(body).await;
    assert_eq!(run.code, 4, "{}", run.output());
    assert!(
        run.stderr
            .contains("/api/v1/licenses/consumption named a next page on another endpoint (`/api/v1/users`)"),
        "{}",
        run.output()
    );
    assert!(!paths.iter().any(|p| p == "/api/v1/users"), "users never read: {paths:?}");
    assert_eq!(rows, 0);
}

/// An OAuth client whose secret Qlik refuses fails the run once, before any stream starts:
/// one token request, one message, exit 3 (H7).
#[tokio::test]
async fn a_refused_oauth_secret_fails_once_before_any_stream() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let (client_id, _) = sim.oauth_client();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("m2m.toml");
    std::fs::write(
        &config,
        format!(
            "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\nclient_id = \"{client_id}\"\nclient_secret = \"not-the-secret-of-this-client\"\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let dest = format!("sqlite:{}", dir.path().join("hub.db").display());
    let run = host(&["run", "--config", &config.display().to_string(), "--dest", &dest], &[]).await;
    assert_eq!(run.code, 3, "{}", run.output());
    let token_requests = sim.requests().iter().filter(|r| r.path == "/oauth/token").count();
    assert_eq!(token_requests, 1, "{}", run.output());
    assert!(run.output().contains("refused the OAuth client's credentials"), "{}", run.output());
    assert!(!run.output().to_lowercase().contains("stream failed"), "no stream started: {}", run.output());
    assert!(!run.output().contains("not-the-secret-of-this-client"));
}

/// A Singer `--state` whose bookmark is not a time stops the tap before it reads anything,
/// with exit 2, as the same state does through the Airbyte protocol (H7).
#[tokio::test]
async fn a_bookmark_that_is_not_a_time_is_a_config_error_for_singer_and_airbyte() {
    let sim = Simulator::start(SimConfig::small()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    let settings = serde_json::json!({"tenant_url": sim.base_url(), "api_key": sim.keys().admin});
    std::fs::write(&config, settings.to_string()).unwrap();
    let config = config.display().to_string();
    let singer_state = dir.path().join("singer-state.json");
    std::fs::write(&singer_state, r#"{"bookmarks": {"license_consumption": {"end_time": "last tuesday"}}}"#)
        .unwrap();
    let singer = host(
        &[
            "singer",
            "--connector",
            "qlik-sense",
            "--config",
            &config,
            "--state",
            &singer_state.display().to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(singer.code, 2, "{}", singer.output());
    assert!(!singer.stdout.contains("\"RECORD\""), "nothing read: {}", singer.output());
    assert!(
        singer.stderr.contains("the saved state of stream `license_consumption` is not a checkpoint"),
        "{}",
        singer.output()
    );

    let catalog = dir.path().join("catalog.json");
    let discovered =
        host(&["airbyte", "--connector", "qlik-sense", "discover", "--config", &config], &[]).await;
    let streams: serde_json::Value = discovered
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|m| m["type"] == "CATALOG")
        .unwrap()["catalog"]["streams"]
        .clone();
    let configured: Vec<serde_json::Value> = streams
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let incremental = s["name"] == "license_consumption";
            serde_json::json!({
                "stream": s,
                "sync_mode": if incremental { "incremental" } else { "full_refresh" },
                "destination_sync_mode": if incremental { "append_dedup" } else { "overwrite" },
            })
        })
        .collect();
    std::fs::write(&catalog, serde_json::json!({ "streams": configured }).to_string()).unwrap();
    let airbyte_state = dir.path().join("airbyte-state.json");
    std::fs::write(
        &airbyte_state,
        r#"[{"type": "STREAM", "stream": {"stream_descriptor": {"name": "license_consumption"}, "stream_state": {"end_time": "last tuesday"}}}]"#,
    )
    .unwrap();
    let airbyte = host(
        &[
            "airbyte",
            "--connector",
            "qlik-sense",
            "read",
            "--config",
            &config,
            "--catalog",
            &catalog.display().to_string(),
            "--state",
            &airbyte_state.display().to_string(),
        ],
        &[],
    )
    .await;
    assert_eq!(airbyte.code, 2, "{}", airbyte.output());
    assert!(airbyte.stdout.contains("config_error"), "{}", airbyte.output());
    assert!(!airbyte.stdout.contains("\"RECORD\""), "nothing read: {}", airbyte.output());
}

//! The hub's data contract, through the `connector-host` command line, on SQLite,
//! PostgreSQL (when DATAHUB_TEST_POSTGRES_URL is set, and always under CI) and JSON
//! Lines: tenants side by side, views and grants that survive, stream selection that
//! only narrows, checkpoints keyed by the tenant, one run per tenant at a time, tables
//! that are not ours, and records a table cannot hold.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Db, Outcome, cli, config_file, postgres, records, run, sqlite};
use serde_json::Value;

/// `connector-host <args>` on a task of its own, so two runs can race.
fn spawn_cli(args: Vec<String>) -> tokio::task::JoinHandle<Outcome> {
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args).await
    })
}

/// Rows of `instance` in `stream`'s table.
async fn rows_of(db: &Db, stream: &str, instance: &str) -> String {
    db.scalar(&format!("SELECT count(*) FROM {} WHERE _instance = '{instance}'", db.table(stream))).await
}

async fn tenants_share_one_hub(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 30\nevents = 20\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, summary, err) = run(dir, db, "items = 50\nevents = 10\ntenant = \"tenant-b\"\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["instance"], "test-source:tenant-b");
    assert_eq!(rows_of(db, "items", "test-source:tenant-a").await, "30", "tenant B left A's rows alone");
    assert_eq!(rows_of(db, "items", "test-source:tenant-b").await, "50");
    assert_eq!(rows_of(db, "events", "test-source:tenant-a").await, "20");
    assert_eq!(rows_of(db, "events", "test-source:tenant-b").await, "10");

    // A full refresh of A replaces A's rows only; B's incremental checkpoint is its own.
    let (code, _, err) = run(dir, db, "items = 10\nevents = 25\nversion = 3\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(rows_of(db, "items", "test-source:tenant-a").await, "10");
    assert_eq!(rows_of(db, "items", "test-source:tenant-b").await, "50");
    assert_eq!(db.count("items").await, 60, "one table holds both tenants");
    let (code, summary, err) = run(dir, db, "items = 50\nevents = 10\ntenant = \"tenant-b\"\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 0, "B resumed from its own checkpoint");
    assert_eq!(db.count("events").await, 35);
}

async fn views_and_grants_survive(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 20\nevents = 10\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let items = db.table("items");
    let view = match db {
        Db::Sqlite(_) => "active_items",
        Db::Postgres(_) => "public.active_items",
    };
    db.execute(&format!("CREATE VIEW {view} AS SELECT id, name FROM {items} WHERE active")).await;
    db.execute(&format!("CREATE INDEX items_by_name ON {items} (name)")).await;
    if let Db::Postgres(_) = db {
        db.execute(&format!(
            "CREATE ROLE hub_reader_{0}; GRANT SELECT ON {items} TO hub_reader_{0}",
            db.tag()
        ))
        .await;
    }
    // Three more syncs: a full refresh with new rows, a new column, fewer rows.
    for (config, active) in [
        ("items = 40\nevents = 20\nversion = 1\n", "20"),
        ("items = 40\nevents = 30\nwith_score = true\n", "20"),
        ("items = 6\nevents = 30\n", "3"),
    ] {
        let (code, _, err) = run(dir, db, config, &[]).await;
        assert_eq!(code, 0, "the view must not break the run: {err}");
        assert_eq!(
            db.scalar(&format!("SELECT count(*) FROM {view}")).await,
            active,
            "the view reads the new rows"
        );
    }
    if let Db::Postgres(_) = db {
        let grantee = format!("hub_reader_{}", db.tag());
        let granted = db
            .scalar(&format!(
                "SELECT count(*) FROM information_schema.role_table_grants WHERE grantee = '{grantee}' AND table_name = 'items'"
            ))
            .await;
        assert_eq!(granted, "1", "the grant survived");
        db.execute(&format!("DROP OWNED BY {grantee}; DROP ROLE {grantee}")).await;
    }
}

async fn a_foreign_table_is_not_ours(dir: &Path, db: &Db) {
    let items = db.table("items");
    if let Db::Postgres(_) = db {
        db.execute("CREATE SCHEMA test_source").await;
    }
    db.execute(&format!("CREATE TABLE {items} (id text, note text)")).await;
    db.execute(&format!("INSERT INTO {items} VALUES ('mine', 'keep me')")).await;
    let (code, _, err) = run(dir, db, "items = 5\nevents = 5\n", &[]).await;
    assert_eq!(code, 7, "{err}");
    assert!(err.contains("was not created by connector-host"), "{err}");
    assert!(err.contains("items"), "the error names the table: {err}");
    assert_eq!(db.scalar(&format!("SELECT note FROM {items}")).await, "keep me");
    assert_eq!(db.last_run_status().await, "failed");
}

async fn a_second_run_of_one_tenant_is_refused(dir: &Path, db: &Db) {
    // 60 pages of 100 ms: about six seconds to race.
    let slow =
        config_file(dir, "slow.toml", "items = 10\nevents = 1200\npage_size = 20\npage_delay_ms = 100\n");
    let other = config_file(dir, "other.toml", "items = 7\nevents = 5\ntenant = \"tenant-b\"\n");
    let same = config_file(dir, "same.toml", "items = 10\nevents = 5\npage_size = 3\n");
    let dest = db.dest();
    let args = |config: &Path| -> Vec<String> {
        ["run", "--config", &config.display().to_string(), "--dest", &dest, "--json"]
            .map(String::from)
            .to_vec()
    };
    let first = spawn_cli(args(&slow));
    let deadline = Instant::now() + Duration::from_secs(20);
    while db.runs_with_status("running").await == 0 {
        assert!(Instant::now() < deadline, "the first run did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let second = spawn_cli(args(&same)).await.unwrap();
    assert_eq!(second.code, 7, "{}", second.stderr);
    assert!(started.elapsed() < Duration::from_secs(4), "refused at once (PostgreSQL: after 2 s of grace)");
    assert!(second.stderr.contains("is already syncing test-source:tenant-a"), "{}", second.stderr);
    // Another tenant loads the same hub meanwhile.
    let parallel = spawn_cli(args(&other)).await.unwrap();
    assert_eq!(parallel.code, 0, "{}", parallel.stderr);
    assert_eq!(db.runs_with_status("running").await, 1, "nobody relabelled the live run");
    let first = first.await.unwrap();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(db.count("events").await, 1205);
    assert_eq!(db.runs_with_status("refused").await, 1, "the refused run is recorded");
    assert_eq!(db.runs_with_status("succeeded").await, 2);
}

async fn streams_can_only_narrow_the_config(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 4\nevents = 4\nstreams = [\"items\"]\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) =
        run(dir, db, "items = 4\nevents = 4\nstreams = [\"items\"]\n", &["--streams", "events"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--streams asks for `events`, which the config's `streams` excludes (it allows: items)"),
        "{err}"
    );
    assert!(err.contains("items, events"), "every stream the connector knows is listed: {err}");
    assert_eq!(db.count("items").await, 4);
    // `--streams "items, events"` with spaces is two names, and may narrow to both
    // when the config allows both.
    let (code, summary, err) = run(dir, db, "items = 4\nevents = 6\n", &["--streams", "items, events"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 6);
}

async fn checkpoints_outlive_tuning(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 3\nevents = 40\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, summary, err) = run(dir, db, "items = 3\nevents = 40\npage_size = 7\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 0, "a new page size keeps the checkpoint");
    assert_eq!(db.count("events").await, 40);
}

async fn records_a_table_cannot_hold_fail_their_stream(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 10\nevents = 5\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, summary, err) =
        run(dir, db, "items = 12\nevents = 9\nnull_id_at = 3\nversion = 4\n", &[]).await;
    assert_eq!(code, 5, "{err}");
    let items =
        summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "items").unwrap().clone();
    assert!(
        items["error"]
            .as_str()
            .unwrap()
            .contains("stream items: record 4, field `id`: the primary key is null"),
        "{items}"
    );
    assert_eq!(db.count("items").await, 10, "the previous rows stay");
    assert_eq!(db.count("events").await, 9, "the other stream was committed");
    let (code, summary, err) = run(dir, db, "items = 12\nevents = 9\nrepeat_item = 5\n", &[]).await;
    assert_eq!(code, 5, "{err}");
    assert!(
        summary.to_string().contains("record 7 repeats the primary key (id = \\\"item-00005\\\")"),
        "{summary}"
    );
    assert_eq!(db.count("items").await, 10);
    let (code, summary, err) = run(dir, db, "items = 12\nevents = 10\nbad_time_at = 2\n", &[]).await;
    assert_eq!(code, 5, "{err}");
    assert!(
        summary.to_string().contains("record 3, field `created_at`: not an RFC 3339 timestamp"),
        "{summary}"
    );
    assert_eq!(db.count("items").await, 10);
    // A value of another type than its column's fails the stream where the destination
    // converts it; the rows around it do not poison the load.
    let (code, summary, err) = run(dir, db, "items = 12\nevents = 11\nbad_rank_at = 6\n", &[]).await;
    assert_eq!(code, 5, "{err}");
    assert!(summary.to_string().contains("field rank: expected integer, got string"), "{summary}");
    assert_eq!(db.count("items").await, 10);
    assert_eq!(db.count("events").await, 11, "the other stream was committed");
    // NUL, which PostgreSQL refuses in text, lands as U+FFFD on every destination.
    let (code, _, err) = run(dir, db, "items = 12\nevents = 11\nnul_in_names = true\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let items = db.table("items");
    assert_eq!(
        db.scalar(&format!("SELECT name FROM {items} WHERE id = 'item-00004'")).await,
        "Item\u{FFFD}4"
    );
}

/// The columns of `stream`'s primary key, in order, comma-separated.
async fn key_of(db: &Db, stream: &str) -> String {
    let table = db.table(stream);
    db.scalar(&match db {
        Db::Sqlite(_) => format!(
            "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info('{table}') WHERE pk > 0 ORDER BY pk)"
        ),
        Db::Postgres(_) => format!(
            "SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM pg_index i \
             CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
             WHERE i.indrelid = '{table}'::regclass AND i.indisprimary"
        ),
    })
    .await
}

/// Keys `stream`'s table as earlier connector-hosts made it: the stream's key, then
/// `_instance`.
async fn rekey_the_old_way(db: &Db, stream: &str, key: &str) {
    let table = db.table(stream);
    match db {
        Db::Sqlite(_) => {
            let create = db.scalar(&format!("SELECT sql FROM sqlite_master WHERE name = '{table}'")).await;
            let old = create.replacen(&format!("\"{table}\""), "\"rekeyed\"", 1).replace(
                &format!("PRIMARY KEY (\"_instance\", \"{key}\")"),
                &format!("PRIMARY KEY (\"{key}\", \"_instance\")"),
            );
            assert_ne!(old, create, "the table's DDL names its key: {create}");
            db.execute(&format!(
                "{old}; INSERT INTO rekeyed SELECT * FROM {table}; DROP TABLE {table}; ALTER TABLE rekeyed RENAME TO {table}"
            ))
            .await;
        }
        Db::Postgres(_) => {
            db.execute(&format!(
                "ALTER TABLE {table} DROP CONSTRAINT {stream}_pkey, ADD PRIMARY KEY ({key}, _instance)"
            ))
            .await;
        }
    }
}

/// Tables are keyed by `_instance` first, so what a run does to its tenant's rows reads one
/// range of the key; a table keyed the old way (the stream's key first) still takes every
/// kind of load: another tenant, a full refresh, new and re-read incremental rows.
async fn tables_keyed_the_old_way_still_load(dir: &Path, db: &Db) {
    let (code, _, err) = run(dir, db, "items = 20\nevents = 10\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(key_of(db, "items").await, "_instance,id");
    assert_eq!(key_of(db, "events").await, "_instance,seq");
    for (stream, key) in [("items", "id"), ("events", "seq")] {
        rekey_the_old_way(db, stream, key).await;
        assert_eq!(key_of(db, stream).await, format!("{key},_instance"));
    }
    let (code, _, err) = run(dir, db, "items = 30\nevents = 15\ntenant = \"tenant-b\"\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(dir, db, "items = 5\nevents = 25\nversion = 2\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let config = dir.join("source.toml").display().to_string();
    let out =
        cli(&["state", "reset", "--config", &config, "--dest", &db.dest(), "--streams", "events"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (code, summary, err) = run(dir, db, "items = 5\nevents = 25\nversion = 2\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&summary, "events"), 25, "every event read again");
    for (stream, instance, rows) in [
        ("items", "tenant-a", "5"),
        ("items", "tenant-b", "30"),
        ("events", "tenant-a", "25"),
        ("events", "tenant-b", "15"),
    ] {
        assert_eq!(
            rows_of(db, stream, &format!("test-source:{instance}")).await,
            rows,
            "{stream} of {instance}"
        );
    }
    assert_eq!(key_of(db, "events").await, "seq,_instance", "the old key stays");
}

/// Runs each scenario on SQLite and on PostgreSQL (which returns early, saying why,
/// when no server is configured outside CI): tests `<scenario>::sqlite` and
/// `<scenario>::postgres`.
macro_rules! on_sqlite_and_postgres {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                super::$scenario(dir.path(), &super::sqlite(dir.path())).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = super::postgres().await else { return };
                let dir = tempfile::tempdir().unwrap();
                super::$scenario(dir.path(), &db).await;
            }
        }
    )*};
}

on_sqlite_and_postgres!(
    tenants_share_one_hub,
    views_and_grants_survive,
    a_foreign_table_is_not_ours,
    a_second_run_of_one_tenant_is_refused,
    streams_can_only_narrow_the_config,
    checkpoints_outlive_tuning,
    records_a_table_cannot_hold_fail_their_stream,
    tables_keyed_the_old_way_still_load,
);

fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_tenants_side_by_side_one_run_each() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    let dest = format!("jsonl:{}", root.display());
    let a =
        config_file(dir.path(), "a.toml", "items = 10\nevents = 600\npage_size = 10\npage_delay_ms = 50\n");
    let b = config_file(dir.path(), "b.toml", "items = 4\nevents = 3\ntenant = \"tenant-b\"\n");
    let args = |config: &Path| -> Vec<String> {
        ["run", "--config", &config.display().to_string(), "--dest", &dest, "--quiet"]
            .map(String::from)
            .to_vec()
    };
    let first = spawn_cli(args(&a));
    let lock_dir = root.join(".locks");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !root.join("test-source_tenant-a").join("_state.json").exists() {
        assert!(Instant::now() < deadline, "the first run did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = spawn_cli(args(&a)).await.unwrap();
    assert_eq!(second.code, 7, "{}", second.stderr);
    let other = spawn_cli(args(&b)).await.unwrap();
    assert_eq!(other.code, 0, "{}", other.stderr);
    let first = first.await.unwrap();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(lock_dir.is_dir());
    assert_eq!(lines(&root.join("test-source_tenant-a").join("events.jsonl")), 600);
    assert_eq!(lines(&root.join("test-source_tenant-b").join("items.jsonl")), 4);
    // The loser left nothing behind: a rerun appends nothing.
    let again = spawn_cli(args(&a)).await.unwrap();
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(lines(&root.join("test-source_tenant-a").join("events.jsonl")), 600);
    let runs = cli(&["runs", "--dest", &dest, "--json"]).await;
    let runs: Vec<Value> = serde_json::from_str(&runs.stdout).unwrap();
    let mut statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, ["refused", "succeeded", "succeeded", "succeeded"]);
}

#[tokio::test]
async fn jsonl_foreign_file_and_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    let dest = format!("jsonl:{}", root.display());
    let folder = root.join("test-source_tenant-a");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("items.jsonl"), "{\"someone\": \"else\"}\n").unwrap();
    let c = config_file(dir.path(), "s.toml", "items = 5\nevents = 5\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(folder.join("items.jsonl")).unwrap(), "{\"someone\": \"else\"}\n");
    std::fs::remove_file(folder.join("items.jsonl")).unwrap();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let c =
        config_file(dir.path(), "s.toml", "items = 8\nevents = 7\nrepeat_item = 1\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_eq!(lines(&folder.join("items.jsonl")), 5, "a repeated key fails the stream: no doubled rows");
    assert_eq!(lines(&folder.join("events.jsonl")), 7);
}

/// Every destination that cannot be created exits 6, whatever its kind.
#[tokio::test]
async fn an_unwritable_destination_exits_6_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let c = config_file(dir.path(), "s.toml", "items = 2\n").display().to_string();
    for dest in [
        format!("sqlite:{}/hub.db", file.display()),
        format!("jsonl:{}/out", file.display()),
        format!("csv:{}/out", file.display()),
    ] {
        let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
        assert_eq!(out.code, 6, "{dest}: {}", out.stderr);
    }
}

/// A wrong PostgreSQL password is the destination's problem (6), not the source's (3).
#[tokio::test]
async fn a_wrong_database_password_exits_6() {
    let Ok(login) = std::env::var("DATAHUB_TEST_POSTGRES_LOGIN_URL") else {
        assert!(std::env::var_os("CI").is_none(), "CI must set DATAHUB_TEST_POSTGRES_LOGIN_URL");
        eprintln!("skipping: set DATAHUB_TEST_POSTGRES_LOGIN_URL");
        return;
    };
    let mut url = url::Url::parse(&login).unwrap();
    url.set_password(Some("certainly-wrong-pw")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let c = config_file(dir.path(), "s.toml", "items = 2\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", url.as_str(), "--quiet"]).await;
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("password authentication failed"), "the server's own words: {}", out.stderr);
    assert!(!out.stderr.contains("certainly-wrong-pw"), "{}", out.stderr);
}

#[tokio::test]
async fn demo_has_its_own_default_file() {
    let help = cli(&["demo", "--help"]).await;
    assert!(help.stdout.contains("datahub-demo.db"), "{}", help.stdout);
    let help = cli(&["run", "--help"]).await;
    for code in ["5 partial", "6", "7 conflict", "130 interrupted"] {
        assert!(help.stdout.contains(code), "run --help documents {code}: {}", help.stdout);
    }
}

/// A session holding a lock on a hub table makes the run fail within the lock timeout,
/// saying what to look for (qlik_e2e shows SIGINT stops a run waiting on one).
#[tokio::test]
async fn postgres_a_held_lock_is_bounded() {
    let Some(db) = postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &db, "items = 5\nevents = 5\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let (client, conn) = tokio_postgres::connect(&db.dest(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    client.batch_execute("BEGIN; LOCK TABLE test_source.items IN ACCESS EXCLUSIVE MODE").await.unwrap();

    let short = format!("{}?options=-c%20lock_timeout%3D1s", db.dest());
    let started = Instant::now();
    let config = config_file(dir.path(), "s.toml", "items = 6\nevents = 6\n").display().to_string();
    let out = cli(&["run", "--config", &config, "--dest", &short, "--quiet"]).await;
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("lock timeout"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(15), "bounded by the lock timeout");

    client.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(db.count("items").await, 5, "the previous rows stay");
}

/// `runs` and `state` look at a hub; a mistyped one is reported, never created, and a
/// stream name that does not exist is named.
#[tokio::test]
async fn looking_at_a_hub_never_creates_one() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo").join("hub.db");
    let out = cli(&["runs", "--dest", &format!("sqlite:{}", typo.display())]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("there is no hub at"), "{}", out.stderr);
    assert!(!typo.exists() && !dir.path().join("typo").exists(), "nothing was created");
    let out = cli(&["runs", "--dest", &format!("jsonl:{}", dir.path().join("nope").display())]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);

    let db = sqlite(dir.path());
    let (code, _, err) = run(dir.path(), &db, "items = 2\nevents = 3\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let config = dir.path().join("source.toml").display().to_string();
    let out = cli(&["state", "reset", "--config", &config, "--dest", &db.dest(), "--streams", "nope"]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("unknown stream `nope`") && out.stderr.contains("items, events"),
        "{}",
        out.stderr
    );
    assert_eq!(db.state_seq().await, "3", "nothing was reset");
}

/// A stream file replaced by a folder fails the run with a message, instead of spinning.
#[tokio::test]
async fn jsonl_stream_file_that_is_a_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    let dest = format!("jsonl:{}", root.display());
    let c = config_file(dir.path(), "s.toml", "items = 3\nevents = 3\n").display().to_string();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let events = root.join("test-source_tenant-a").join("events.jsonl");
    std::fs::remove_file(&events).unwrap();
    std::fs::create_dir(&events).unwrap();
    let started = Instant::now();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(out.stderr.contains("it is a folder, not a file"), "{}", out.stderr);
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Many tenants in one run: a folder of configs, two at a time; a tenant whose key is
/// rejected fails alone, the others land, and the exit code says partial.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tenants_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let tenants = dir.path().join("tenants");
    std::fs::create_dir(&tenants).unwrap();
    for (file, lines) in [
        ("a.toml", "items = 11\nevents = 30\npage_delay_ms = 20\n"),
        ("b.toml", "items = 12\nevents = 40\ntenant = \"tenant-b\"\npage_delay_ms = 20\n"),
        ("c.toml", "items = 13\nevents = 50\ntenant = \"tenant-c\"\npage_delay_ms = 20\n"),
    ] {
        config_file(&tenants, file, lines);
    }
    let bad = config_file(&tenants, "d.toml", "items = 1\ntenant = \"tenant-d\"\n");
    let text = std::fs::read_to_string(&bad).unwrap().replace(common::GOOD_KEY, "rejected-key");
    std::fs::write(&bad, text).unwrap();
    let db = sqlite(dir.path());
    let dest = db.dest();
    let folder = tenants.display().to_string();
    let out = cli(&["run", "--config", &folder, "--dest", &dest, "--parallel", "2"]).await;
    assert_eq!(out.code, 5, "one tenant failed, the others landed: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("4 tenants: 3 succeeded, 0 partial, 1 failed."), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.starts_with("succeeded    test-source:tenant-b")), "{}", out.stdout);
    assert!(out.stdout.contains("d.toml"), "the failed tenant is named: {}", out.stdout);
    for (instance, items) in [("tenant-a", "11"), ("tenant-b", "12"), ("tenant-c", "13")] {
        assert_eq!(rows_of(&db, "items", &format!("test-source:{instance}")).await, items);
    }
    assert_eq!(db.count("events").await, 120);

    // --json: one object per config, in config order, with the exit code each had.
    let a = tenants.join("a.toml").display().to_string();
    let out =
        cli(&["run", "--config", &a, "--config", &bad.display().to_string(), "--dest", &dest, "--json"])
            .await;
    assert_eq!(out.code, 5, "{}", out.stderr);
    let outcomes: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(outcomes.iter().map(|o| o["exit"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 3]);
    assert_eq!(outcomes[0]["summary"]["instance"], "test-source:tenant-a");

    // When every tenant fails, the first one's code is the run's. (Two tenants: one config
    // given twice is one tenant, whose second run may find the first holding it.)
    let other_bad = dir.path().join("e.toml");
    std::fs::write(&other_bad, std::fs::read_to_string(&bad).unwrap().replace("tenant-d", "tenant-e"))
        .unwrap();
    let out = cli(&[
        "run",
        "--config",
        &bad.display().to_string(),
        "--config",
        &other_bad.display().to_string(),
        "--dest",
        &dest,
    ])
    .await;
    assert_eq!(out.code, 3, "{}", out.stdout);
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = cli(&["run", "--config", &empty.display().to_string(), "--dest", &dest]).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("holds no *.toml config"), "{}", out.stderr);
}

/// A folder holds each key of an incremental stream once, as a table would: records
/// read again (a reset checkpoint here; Qlik's look-back window in real runs) replace
/// their earlier lines instead of doubling them.
#[tokio::test]
async fn files_hold_each_key_once() {
    for format in ["jsonl", "csv"] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("export");
        let dest = format!("{format}:{}", root.display());
        let c = config_file(dir.path(), "s.toml", "items = 3\nevents = 40\n").display().to_string();
        let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let out = cli(&["state", "reset", "--config", &c, "--dest", &dest]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let c = config_file(dir.path(), "s.toml", "items = 3\nevents = 55\nwith_score = false\n")
            .display()
            .to_string();
        let out = cli(&["run", "--config", &c, "--dest", &dest, "--json"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        let summary: Value = serde_json::from_str(&out.stdout).unwrap();
        let events =
            summary["streams"].as_array().unwrap().iter().find(|s| s["stream"] == "events").unwrap().clone();
        assert_eq!(
            (events["load"]["inserted"].as_u64(), events["load"]["updated"].as_u64()),
            (Some(15), Some(40)),
            "{events}"
        );
        let file = root.join("test-source_tenant-a").join(format!("events.{format}"));
        let seqs: Vec<u64> = match format {
            "jsonl" => std::fs::read_to_string(&file)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["seq"].as_u64().unwrap())
                .collect(),
            _ => csv::Reader::from_path(&file)
                .unwrap()
                .records()
                .map(|r| r.unwrap()[0].parse().unwrap())
                .collect(),
        };
        assert_eq!(seqs, (1..=55).collect::<Vec<_>>(), "{format}: each key once, in order");
        // The next run appends after the compacted file and keeps it exact.
        let c = config_file(dir.path(), "s.toml", "items = 3\nevents = 60\n").display().to_string();
        let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(lines(&file) - usize::from(format == "csv"), 60, "{format}");
    }
}

/// `state show|reset` find the instance without reading the API key: an operator
/// tidying checkpoints need not hold the secret.
#[tokio::test]
async fn state_commands_need_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = sqlite(dir.path());
    let (code, _, err) = run(dir.path(), &db, "items = 2\nevents = 4\n", &[]).await;
    assert_eq!(code, 0, "{err}");
    let keyless = dir.path().join("keyless.toml");
    std::fs::write(
        &keyless,
        "connector = \"test-source\"\n[config]\napi_key = { env = \"DATAHUB_TEST_KEY_NOBODY_SETS\" }\nitems = 2\n",
    )
    .unwrap();
    let keyless = keyless.display().to_string();
    let out = cli(&["state", "show", "--config", &keyless, "--dest", &db.dest()]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let shown: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(shown["instance"], "test-source:tenant-a");
    assert_eq!(shown["streams"]["events"]["seq"], 4);
    let out = cli(&["run", "--config", &keyless, "--dest", &db.dest(), "--quiet"]).await;
    assert_eq!(out.code, 2, "a run still needs the key: {}", out.stderr);
    assert!(out.stderr.contains("DATAHUB_TEST_KEY_NOBODY_SETS"), "{}", out.stderr);
}

/// A corrupt `_state.json` stops a run with a message naming it and the way out, and
/// `state reset` (the way out) sets it aside instead of failing on it too.
#[tokio::test]
async fn a_corrupt_state_file_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    let dest = format!("jsonl:{}", root.display());
    let c = config_file(dir.path(), "s.toml", "items = 2\nevents = 5\n").display().to_string();
    assert_eq!(cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await.code, 0);
    let state = root.join("test-source_tenant-a").join("_state.json");
    std::fs::write(&state, "{ not json").unwrap();
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 6, "{}", out.stderr);
    assert!(
        out.stderr.contains("corrupt state file") && out.stderr.contains("state reset"),
        "{}",
        out.stderr
    );
    let out = cli(&["state", "reset", "--config", &c, "--dest", &dest]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let folder = state.parent().unwrap();
    let aside = std::fs::read_dir(folder)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("_state.json.corrupt-"))
        .count();
    assert_eq!(aside, 1, "the corrupt file is kept aside for a look");
    let out = cli(&["run", "--config", &c, "--dest", &dest, "--quiet"]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(lines(&folder.join("events.jsonl")), 5, "read again from the start, each key once");
    assert_eq!(lines(&folder.join("items.jsonl")), 2);
}

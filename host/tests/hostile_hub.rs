//! Hostile hubs, driven through the real `connector-host` binary: a table an operator
//! replaced under a name `_tables` lists, a PostgreSQL run stopped while it waits on an
//! operator's lock, a SQLite file with damaged pages, a file that is not a database.
//! Each must end with the documented exit code and a message that says what happened and
//! what to do, and leave what is not ours untouched.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::Db;
use tests::qlik_sim::{SimConfig, Simulator};

/// No run may take longer than this.
const DEADLINE: Duration = Duration::from_secs(60);

/// What one run of the binary did.
struct Run {
    code: i32,
    stderr: String,
}

/// A Qlik tenant (the simulator) and a config file reading it, in a folder of its own.
struct Tenant {
    _sim: Simulator,
    dir: tempfile::TempDir,
    config: String,
}

impl Tenant {
    async fn start() -> Tenant {
        let sim = Simulator::start(SimConfig::small()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), &sim.keys().admin).unwrap();
        let config = dir.path().join("qlik.toml");
        std::fs::write(
            &config,
            format!(
                "connector = \"qlik-sense\"\n[config]\ntenant_url = \"{}\"\napi_key = {{ file = \"key\" }}\nrequests_per_minute = 1000000\n",
                sim.base_url()
            ),
        )
        .unwrap();
        Tenant { _sim: sim, config: config.display().to_string(), dir }
    }

    /// The binary's `run` of this tenant into `db`, with `extra` arguments.
    fn command(&self, db: &Db, extra: &[&str]) -> tokio::process::Command {
        let mut args = vec!["run", "--config", &self.config, "--dest"];
        let dest = db.dest();
        args.push(&dest);
        args.extend_from_slice(extra);
        binary(&args)
    }

    /// Runs this tenant into `db` with `extra` arguments.
    async fn run(&self, db: &Db, extra: &[&str]) -> Run {
        finish(self.command(db, extra).spawn().unwrap()).await
    }
}

/// `connector-host args`, its output piped, killed if the test ends first.
fn binary(args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_connector-host"));
    command
        .args(args)
        .env_remove("PGPASSWORD")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Waits for `child`, failing the test if it outlives [`DEADLINE`].
async fn finish(child: tokio::process::Child) -> Run {
    let output = tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .expect("connector-host still running after the deadline")
        .unwrap();
    Run {
        code: output.status.code().expect("exited, not killed"),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The Qlik `users` table in `db`.
fn users_table(db: &Db) -> &'static str {
    match db {
        Db::Sqlite(_) => "qlik_sense__users",
        Db::Postgres(_) => "qlik_sense.users",
    }
}

/// `db` as connector-host names it in messages.
fn described(db: &Db) -> String {
    match db {
        Db::Sqlite(path) => format!("SQLite database {path}"),
        Db::Postgres(url) => format!("PostgreSQL database {url}"),
    }
}

/// The column names of the object called `users_table` (empty when it has none).
async fn users_columns(db: &Db) -> String {
    let sql = match db {
        Db::Sqlite(_) => "SELECT group_concat(name, ',') FROM pragma_table_info('qlik_sense__users')",
        Db::Postgres(_) => {
            "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = 'qlik_sense' AND table_name = 'users'"
        }
    };
    db.scalar(sql).await
}

/// H6: an operator dropped the users table and put something else under its name, which
/// `_tables` still lists. The run must stop with exit 7 naming the table and what it is,
/// and leave it exactly as it was (before, a view got exit 2 "column type changed: id
/// was , is now TEXT", and a table without `_instance` got 10 columns added before the
/// run failed on raw SQL). Once the operator moves it away, a full refresh makes the
/// table anew and lists it again.
async fn a_replaced_table_is_not_ours(db: Db, tenant: &Tenant) {
    let first = tenant.run(&db, &["--streams", "users"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let table = users_table(&db);
    let loaded = db.scalar(&format!("SELECT count(*) FROM {table}")).await;
    let mut replacements = vec![
        ("a view", format!("DROP TABLE {table}; CREATE VIEW {table} AS SELECT 'u1' AS id")),
        (
            "a table without _instance in its primary key",
            format!("DROP VIEW {table}; CREATE TABLE {table} (id TEXT PRIMARY KEY, name TEXT)"),
        ),
    ];
    if let Db::Postgres(_) = db {
        replacements.push((
            "a foreign table",
            format!(
                "DROP TABLE {table}; CREATE EXTENSION IF NOT EXISTS file_fdw;
                 CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
                 CREATE FOREIGN TABLE {table} (id text) SERVER files OPTIONS (filename '/dev/null')"
            ),
        ));
    }
    let mut last = "";
    for (what, sql) in &replacements {
        db.execute(sql).await;
        let columns = users_columns(&db).await;
        let run = tenant.run(&db, &["--streams", "users"]).await;
        assert_eq!(run.code, 7, "{what}: {}", run.stderr);
        let said = format!("{table} in {} is {what}, not the table connector-host made", described(&db));
        assert!(run.stderr.contains(&said), "{what}: wanted `{said}` in {}", run.stderr);
        assert!(run.stderr.contains("rerun with --full-refresh"), "{}", run.stderr);
        assert_eq!(users_columns(&db).await, columns, "{what} was changed");
        last = what;
    }
    let kind = if last == "a foreign table" { "FOREIGN TABLE" } else { "TABLE" };
    db.execute(&format!("DROP {kind} {table}")).await;
    let reloaded = tenant.run(&db, &["--streams", "users", "--full-refresh"]).await;
    assert_eq!(reloaded.code, 0, "{}", reloaded.stderr);
    assert_eq!(db.scalar(&format!("SELECT count(*) FROM {table}")).await, loaded);
}

#[tokio::test]
async fn a_listed_sqlite_table_an_operator_replaced_is_not_ours_and_stays_untouched() {
    let tenant = Tenant::start().await;
    let db = common::sqlite(tenant.dir.path());
    a_replaced_table_is_not_ours(db, &tenant).await;
}

#[tokio::test]
async fn a_listed_postgres_table_an_operator_replaced_is_not_ours_and_stays_untouched() {
    let Some(db) = common::postgres().await else { return };
    let tenant = Tenant::start().await;
    a_replaced_table_is_not_ours(db, &tenant).await;
}

/// H6, for the connector's view: an operator replaced the `licence_usage` view, which
/// `_tables` lists, with a table of their own. The run loads its streams (views are made
/// after the data is committed) and says the view is not ours, leaving the table as it
/// was; before, SQLite failed on `DROP VIEW` with raw SQL.
#[tokio::test]
async fn a_listed_view_an_operator_replaced_with_a_table_is_left_alone() {
    let tenant = Tenant::start().await;
    let db = common::sqlite(tenant.dir.path());
    let first = tenant.run(&db, &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    db.execute("DROP VIEW qlik_sense__licence_usage; CREATE TABLE qlik_sense__licence_usage (note TEXT); INSERT INTO qlik_sense__licence_usage VALUES ('mine')").await;
    let run = tenant.run(&db, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let said = format!(
        "qlik_sense__licence_usage in {} is a table, not the view connector-host made",
        described(&db)
    );
    assert!(run.stderr.contains(&said), "wanted `{said}` in {}", run.stderr);
    assert_eq!(db.scalar("SELECT group_concat(note) FROM qlik_sense__licence_usage").await, "mine");
}

/// H2: a PostgreSQL run waiting on an operator's lock of the users table (taken in
/// `mode`) is stopped with SIGTERM. It must cancel its waiting statement, roll back and
/// let go of the tenant before it exits, and record its end: the tenant's next run (of
/// another stream, while the operator still holds the lock) proceeds at once. Before, the
/// dead run's session kept waiting and kept both advisory locks until `lock_timeout`
/// (60 s): every rerun in between exited 7 naming the dead run, which `_runs` showed
/// `running`.
async fn a_run_stopped_while_waiting_lets_go(mode: &str) {
    let Some(db) = common::postgres().await else { return };
    let tenant = Tenant::start().await;
    let first = tenant.run(&db, &["--streams", "users"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);

    let (operator, connection) = tokio_postgres::connect(&db.dest(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    operator.batch_execute(&format!("BEGIN; LOCK TABLE qlik_sense.users IN {mode} MODE")).await.unwrap();
    let child = tenant.command(&db, &["--streams", "users"]).spawn().unwrap();
    let waiting =
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'qlik_sense.users'::regclass";
    let since = Instant::now();
    while db.scalar(waiting).await != "1" {
        assert!(since.elapsed() < Duration::from_secs(30), "the run never waited on the operator's lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let stopped = finish(child).await;
    assert_eq!(stopped.code, 130, "{}", stopped.stderr);
    assert!(stopped.stderr.contains("interrupted by SIGTERM"), "{}", stopped.stderr);

    assert_eq!(db.scalar(waiting).await, "0", "the stopped run's statement still waits on the server");
    let rerun = tenant.run(&db, &["--streams", "spaces"]).await;
    assert_eq!(rerun.code, 0, "{}", rerun.stderr);
    let ended = "SELECT count(*) FROM datahub._runs WHERE status = 'interrupted' AND finished_at IS NOT NULL AND error LIKE '%SIGTERM%'";
    assert_eq!(db.scalar(ended).await, "1");
    assert_eq!(db.scalar("SELECT count(*) FROM datahub._runs WHERE status = 'running'").await, "0");
    operator.batch_execute("COMMIT").await.unwrap();
}

/// An `ACCESS EXCLUSIVE` lock (an `ALTER`, a `LOCK TABLE`) holds the run while it
/// prepares its tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_run_stopped_while_preparing_its_tables_lets_go_of_the_tenant() {
    a_run_stopped_while_waiting_lets_go("ACCESS EXCLUSIVE").await;
}

/// A `SHARE` lock (a `CREATE INDEX`) lets the run read and load, and holds its final
/// commit, which replaces the tenant's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_run_stopped_while_committing_lets_go_of_the_tenant() {
    a_run_stopped_while_waiting_lets_go("SHARE").await;
}

/// Overwrites the first three leaf pages of `table` in the SQLite file at `path` with
/// bytes from a fixed seed, as a failing disk or a stray write would.
fn damage_three_pages(path: &str, table: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    let page_size: u64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let mut stmt = conn
        .prepare("SELECT pageno FROM dbstat WHERE name = ?1 AND pagetype = 'leaf' ORDER BY pageno LIMIT 3")
        .unwrap();
    let pages: Vec<u64> = stmt.query_map([table], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(pages.len(), 3, "{table} has fewer than three leaf pages");
    drop(stmt);
    drop(conn);
    let mut bytes = std::fs::read(path).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for page in pages {
        let start = ((page - 1) * page_size) as usize;
        for byte in &mut bytes[start..start + page_size as usize] {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *byte = seed as u8;
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// H8: pages of a table in a SQLite hub are damaged, and the tenant's last run ended
/// uncleanly (left `running`, as a killed process leaves it). The next run must check
/// the file before writing anything, stop with exit 6 saying the hub is damaged and how
/// to recover, and leave the file exactly as it was; a run that meets the damage while
/// writing says the same. Before, the hub was written into and the damage surfaced, if
/// at all, as "database disk image is malformed".
#[tokio::test]
async fn a_damaged_sqlite_hub_is_named_and_not_written_into() {
    let tenant = Tenant::start().await;
    let db = common::sqlite(tenant.dir.path());
    let first = tenant.run(&db, &["--streams", "users"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let Db::Sqlite(path) = &db else { unreachable!() };
    db.execute(
        "INSERT INTO _runs (run_id, connector, instance, config_fingerprint, started_at, status)
         SELECT 'killed', connector, instance, config_fingerprint, started_at, 'running' FROM _runs;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .await;
    damage_three_pages(path, "qlik_sense__users");
    let before = std::fs::read(path).unwrap();

    let stopped = tenant.run(&db, &["--streams", "users"]).await;
    assert_eq!(stopped.code, 6, "{}", stopped.stderr);
    let said = format!("SQLite database {path} is damaged");
    assert!(stopped.stderr.contains(&said), "wanted `{said}` in {}", stopped.stderr);
    assert!(stopped.stderr.contains(&format!("sqlite3 {path} .recover")), "{}", stopped.stderr);
    assert!(std::fs::read(path).unwrap() == before, "the damaged hub was written into");
    let wal = std::fs::metadata(format!("{path}-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "the run left writes for the damaged hub in its WAL");

    db.execute("DELETE FROM _runs WHERE run_id = 'killed'").await;
    let met = tenant.run(&db, &["--streams", "users"]).await;
    assert_eq!(met.code, 6, "{}", met.stderr);
    assert!(met.stderr.contains(&said), "wanted `{said}` in {}", met.stderr);
}

/// H7: `runs` and `state show` on a file that is not a database say so with exit 6, as
/// `run` does; a path where nothing exists still says that no hub is there (exit 2).
#[tokio::test]
async fn runs_and_state_on_a_file_that_is_not_a_database_say_so_as_run_does() {
    let tenant = Tenant::start().await;
    let path = tenant.dir.path().join("notes.txt");
    std::fs::write(&path, "not a database, only notes\n".repeat(200)).unwrap();
    let dest = format!("sqlite:{}", path.display());
    let said = format!("{} is not an SQLite database", path.display());
    let commands: [Vec<&str>; 3] = [
        vec!["run", "--config", &tenant.config, "--dest", &dest, "--streams", "users"],
        vec!["runs", "--dest", &dest],
        vec!["state", "show", "--config", &tenant.config, "--dest", &dest],
    ];
    for args in &commands {
        let out = finish(binary(args).spawn().unwrap()).await;
        assert_eq!(out.code, 6, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&said), "{args:?}: wanted `{said}` in {}", out.stderr);
        assert!(out.stderr.contains("Check --dest"), "{args:?}: {}", out.stderr);
    }
    let missing = format!("sqlite:{}", tenant.dir.path().join("missing.db").display());
    let out = finish(binary(&["runs", "--dest", &missing]).spawn().unwrap()).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("there is no hub at"), "{}", out.stderr);
    // An empty file is no hub, and reading it must not make one (SQLite would).
    let empty = tenant.dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let dest = format!("sqlite:{}", empty.display());
    for args in
        [vec!["runs", "--dest", &dest], vec!["state", "show", "--config", &tenant.config, "--dest", &dest]]
    {
        let out = finish(binary(&args).spawn().unwrap()).await;
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains("the file is empty"), "{args:?}: {}", out.stderr);
        assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "{args:?} wrote into the empty file");
    }
}

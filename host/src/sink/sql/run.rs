//! The run state machine of SQL hubs, written once over a [`Store`].
//!
//! - `begin` gives every stream its table (refusing one `_tables` does not list, and
//!   one it lists that is no longer the table we made: [`shape`]; stopping on a
//!   changed column type, adding new columns, keeping old ones) and a load: a staging
//!   table for full refresh, an upsert for incremental;
//! - checkpoints wait in the run's [`Checkpoints`], the bookkeeping file destinations
//!   share: incremental ones are committed with every incremental row written before
//!   them once its policy says so, full-refresh ones wait for the final swap;
//! - `commit` replaces the instance's rows of every full-refresh stream that did not
//!   fail, saves their checkpoints and the run's outcome in one transaction;
//! - `abort` rolls back what is not committed and records the outcome.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use connector_api::{Error, Result, State, SyncMode, ViewDescriptor};
use serde_json::Value;

use super::{Batch, Store, Table, books, column_defs, ident, ident_list, shape};
use crate::sink::checkpoints::Checkpoints;
use crate::sink::lock::held_by_another_run;
use crate::sink::schema::{INSTANCE, reconcile, sql_name};
use crate::sink::{
    BATCH_ROWS, Destination, IDLE_COMMIT, LoadStats, RunInfo, RunOutcome, RunRecord, RunStatus, StreamPlan,
    foreign_table, now_rfc3339, unselected_stream,
};

/// A hub in an SQL database: the [`Destination`] every SQL store shares.
pub struct SqlDestination<S: Store> {
    store: S,
    run: Option<ActiveRun<S::Load>>,
    in_tx: bool,
}

/// Where one stream's rows go.
struct Target<L> {
    plan: StreamPlan,
    table: Table,
    load: L,
    staged: bool,
    rows_before: u64,
}

struct ActiveRun<L> {
    info: RunInfo,
    targets: HashMap<String, Target<L>>,
    /// Checkpoints not committed yet; the open transaction holds their rows.
    checkpoints: Checkpoints<()>,
    extracted_at: String,
    rows_since_stamp: usize,
}

impl<S: Store> SqlDestination<S> {
    /// A destination over `store`.
    pub fn new(store: S) -> Self {
        SqlDestination { store, run: None, in_tx: false }
    }

    /// Opens a transaction unless one is open: a store then writes only when there is
    /// something to write, so runs of other instances get their turn in between.
    async fn open_tx(store: &mut S, in_tx: &mut bool) -> Result<()> {
        if !*in_tx {
            store.execute(S::BEGIN).await?;
            *in_tx = true;
        }
        Ok(())
    }

    async fn commit_tx(&mut self) -> Result<()> {
        if self.in_tx {
            self.store.execute("COMMIT").await?;
            self.in_tx = false;
        }
        Ok(())
    }

    /// Waits for what is on its way, then rolls back the open transaction.
    async fn rollback(&mut self) {
        if let Err(e) = self.store.settle().await {
            tracing::debug!(error = %e, "A batch failed before the rollback");
        }
        if std::mem::take(&mut self.in_tx) {
            self.store.rollback().await;
        }
    }

    /// Creates or updates `plan`'s table and prepares its load, inside the open
    /// transaction.
    async fn prepare_target(
        &mut self,
        run: &RunInfo,
        plan: &StreamPlan,
        n: usize,
    ) -> Result<Target<S::Load>> {
        let store = &mut self.store;
        let table = S::table(&plan.connector, &sql_name(&plan.stream));
        let (exists, ours) = books::table_status(store, &table).await?;
        if exists && !ours {
            return Err(foreign_table(&table.to_string(), &store.describe()));
        }
        let q = table.quoted();
        if exists {
            shape::ensure_table(store, &table, &plan.stream).await?;
            let existing = books::existing_columns(store, &table).await?;
            let changes = reconcile(&table.to_string(), plan, &existing, S::type_name)?;
            for (name, ty) in &changes.add {
                tracing::info!(table = %table, column = %name, "Adding new column");
                store.execute(&format!("ALTER TABLE {q} ADD COLUMN {} {ty}", ident(name))).await?;
            }
            for (name, _) in &changes.kept {
                tracing::info!(table = %table, column = %name, "Keeping a column the connector no longer sends");
            }
        } else {
            let schema = table.schema.as_ref().map(|s| format!("CREATE SCHEMA IF NOT EXISTS {};", ident(s)));
            let (columns, key) = (column_defs(plan, S::type_name).join(", "), ident_list(&plan.table_key()));
            let create = format!("CREATE TABLE {q} ({columns}, PRIMARY KEY ({key}))");
            store.execute(&format!("{}{create}", schema.unwrap_or_default())).await?;
            books::register(store, &table, &run.connector, &plan.stream, Some(&run.run_id)).await?;
        }
        let rows_before = if exists { books::count(store, &table, &run.instance).await? } else { 0 };
        let load = store.prepare_load(plan, &table, n).await?;
        let staged = plan.sync_mode == SyncMode::FullRefresh;
        Ok(Target { plan: plan.clone(), table, load, staged, rows_before })
    }

    /// Commits the run's progress: every incremental row written so far, then the
    /// checkpoints that cover them.
    async fn commit_progress(&mut self) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("commit outside a run"))?;
        Self::open_tx(&mut self.store, &mut self.in_tx).await?;
        for target in run.targets.values_mut().filter(|t| !t.staged) {
            self.store.flush(&mut target.load).await?;
        }
        self.store.settle().await?;
        for (stream, (value, ())) in run.checkpoints.take_pending() {
            books::save_state(&mut self.store, &run.info, &stream, &value).await?;
        }
        self.commit_tx().await
    }

    /// The final transaction of `run`: swaps the staged streams that did not fail and
    /// saves their checkpoints, the pending ones, and the outcome.
    async fn commit_run(&mut self, run: &mut ActiveRun<S::Load>, outcome: &RunOutcome) -> Result<()> {
        Self::open_tx(&mut self.store, &mut self.in_tx).await?;
        for target in run.targets.values_mut() {
            self.store.flush(&mut target.load).await?;
        }
        self.store.settle().await?;
        let instance = &run.info.instance;
        for target in run.targets.values().filter(|t| !outcome.failed.contains_key(&t.plan.stream)) {
            let Some(staging) = S::staging(&target.load) else { continue };
            let columns = ident_list(&target.plan.load_columns());
            let delete = format!("DELETE FROM {} WHERE {} = $1", target.table.quoted(), ident(INSTANCE));
            self.store.exec(&delete, &[instance]).await?;
            let insert =
                format!("INSERT INTO {} ({columns}) SELECT {columns} FROM {staging}", target.table.quoted());
            self.store.execute(&insert).await?;
        }
        for (stream, value) in run.checkpoints.to_save(&outcome.failed) {
            books::save_state(&mut self.store, &run.info, stream, value).await?;
        }
        books::record_outcome(&mut self.store, outcome).await?;
        self.commit_tx().await
    }
}

#[async_trait]
impl<S: Store> Destination for SqlDestination<S> {
    fn describe(&self) -> String {
        self.store.describe()
    }

    fn sample_query(&self, plan: &StreamPlan) -> String {
        let table = S::table(&plan.connector, &sql_name(&plan.stream));
        format!("{} 'select _instance, count(*) from {table} group by 1'", self.store.shell())
    }

    async fn load_state(&mut self, instance: &str) -> Result<State> {
        books::load_state(&mut self.store, instance).await
    }

    async fn reset_state(&mut self, instance: &str, streams: Option<&[String]>) -> Result<u64> {
        books::reset_state(&mut self.store, instance, streams).await
    }

    async fn recent_runs(&mut self, limit: usize) -> Result<Vec<RunRecord>> {
        books::recent_runs(&mut self.store, limit).await
    }

    async fn lock(&mut self, run: &RunInfo) -> Result<()> {
        if !self.store.try_lock(&run.instance).await? {
            let other = books::running_run(&mut self.store, &run.instance).await?;
            let err = held_by_another_run(&run.instance, &self.store.describe(), other);
            books::insert_run(&mut self.store, run, RunStatus::Refused, Some(&err.to_string())).await?;
            return Err(err);
        }
        // A run of this instance left `running` ended uncleanly (killed, or the machine
        // went down): before anything is written, make sure the database came through.
        if books::running_run(&mut self.store, &run.instance).await?.is_some()
            && let Err(e) = self.store.check_sound().await
        {
            self.store.unlock().await;
            return Err(e);
        }
        books::interrupt_killed(&mut self.store, &run.instance).await?;
        self.store.drop_leftovers(&run.instance).await?;
        books::insert_run(&mut self.store, run, RunStatus::Running, None).await
    }

    async fn begin(&mut self, run: &RunInfo, plans: &[StreamPlan]) -> Result<()> {
        let mut targets = HashMap::new();
        let prepared = async {
            Self::open_tx(&mut self.store, &mut self.in_tx).await?;
            self.store.lock_table_changes().await?;
            for (n, plan) in plans.iter().enumerate() {
                targets.insert(plan.stream.clone(), self.prepare_target(run, plan, n).await?);
            }
            self.commit_tx().await
        }
        .await;
        if let Err(e) = prepared {
            self.rollback().await;
            return Err(e);
        }
        self.run = Some(ActiveRun {
            info: run.clone(),
            targets,
            checkpoints: Checkpoints::default(),
            extracted_at: now_rfc3339(),
            rows_since_stamp: 0,
        });
        Ok(())
    }

    async fn write(&mut self, stream: &str, records: Vec<Value>) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("write outside a run"))?;
        let Some(target) = run.targets.get_mut(stream) else {
            return Err(unselected_stream("record", stream));
        };
        Self::open_tx(&mut self.store, &mut self.in_tx).await?;
        let batch =
            Batch { plan: &target.plan, records: &records, run: &run.info, extracted_at: &run.extracted_at };
        self.store.write(&mut target.load, batch).await?;
        run.checkpoints.wrote(target.staged, records.len());
        // Every BATCH_ROWS rows the rows' stamp moves on, and a one-writer store commits
        // so other runs take turns (incremental rows wait for the checkpoint covering them).
        run.rows_since_stamp += records.len();
        if run.rows_since_stamp >= BATCH_ROWS {
            run.rows_since_stamp = 0;
            run.extracted_at = now_rfc3339();
            if S::ONE_WRITER && !run.checkpoints.policy().pending() {
                return self.commit_progress().await;
            }
        }
        Ok(())
    }

    async fn idle(&mut self) -> Result<()> {
        // Every checkpoint waiting is committed with the rows it covers, so whatever
        // waits (rows in the open transaction, checkpoints) may be committed here.
        let waiting = |r: &ActiveRun<S::Load>| self.in_tx || r.checkpoints.waiting();
        let old = |r: &ActiveRun<S::Load>| r.checkpoints.policy().age() >= IDLE_COMMIT;
        if S::ONE_WRITER && self.run.as_ref().is_some_and(|r| waiting(r) && old(r)) {
            return self.commit_progress().await;
        }
        Ok(())
    }

    async fn checkpoint(&mut self, stream: &str, value: Value) -> Result<()> {
        let run = self.run.as_mut().ok_or_else(|| Error::internal("checkpoint outside a run"))?;
        let Some(target) = run.targets.get(stream) else {
            return Err(unselected_stream("checkpoint", stream));
        };
        if run.checkpoints.keep(stream, value, target.staged, || Ok(()))? {
            self.commit_progress().await
        } else {
            Ok(())
        }
    }

    async fn commit(&mut self, outcome: &RunOutcome) -> Result<BTreeMap<String, LoadStats>> {
        let mut run = self.run.take().ok_or_else(|| Error::internal("commit outside a run"))?;
        if let Err(e) = self.commit_run(&mut run, outcome).await {
            self.rollback().await;
            self.run = Some(run);
            return Err(e);
        }
        self.store.drop_loads(run.targets.values().map(|t| &t.load).collect()).await;
        self.store.unlock().await;
        let mut stats = BTreeMap::new();
        for (stream, target) in &run.targets {
            let rows = books::count(&mut self.store, &target.table, &run.info.instance).await?;
            let received = outcome.records.get(stream).copied().unwrap_or(0);
            stats.insert(
                stream.clone(),
                LoadStats::after_commit(rows, target.rows_before, received, target.staged),
            );
        }
        Ok(stats)
    }

    async fn ensure_views(&mut self, connector: &str, views: &[ViewDescriptor]) -> Result<()> {
        let table = |name: &str| S::table(&sql_name(connector), &sql_name(name));
        for view in views {
            let name = table(view.name);
            let mut missing = Vec::new();
            for stream in view.requires {
                if books::table_status(&mut self.store, &table(stream)).await? != (true, true) {
                    missing.push(*stream);
                }
            }
            if !missing.is_empty() {
                tracing::debug!(view = %name, missing = %missing.join(","), "View waits for its streams' tables");
                continue;
            }
            let Some(sql) = view.sql_for(S::DIALECT) else {
                tracing::warn!(view = %name, dialect = S::DIALECT, "The connector writes this view for other SQL dialects only; it is left out");
                continue;
            };
            let sql = view.render(sql, |s| table(s).quoted());
            // Under the lock on table changes, so that runs of other tenants making the
            // same view at the same moment take turns instead of colliding in the catalog.
            let made = async {
                Self::open_tx(&mut self.store, &mut self.in_tx).await?;
                self.store.lock_table_changes().await?;
                let (exists, ours) = books::table_status(&mut self.store, &name).await?;
                if exists && !ours {
                    return Err(foreign_table(&name.to_string(), &self.store.describe()));
                }
                if exists {
                    shape::ensure_view(&mut self.store, &name).await?;
                }
                self.store.execute(&S::replace_view(&name, &sql)).await?;
                if !ours {
                    books::register(&mut self.store, &name, connector, view.name, None).await?;
                }
                self.commit_tx().await
            }
            .await;
            if let Err(e) = made {
                self.rollback().await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn abort(&mut self, outcome: &RunOutcome) -> Result<()> {
        self.store.cancel().await;
        self.rollback().await;
        if let Some(run) = self.run.take() {
            self.store.drop_loads(run.targets.values().map(|t| &t.load).collect()).await;
        }
        let recorded = books::record_outcome(&mut self.store, outcome).await;
        self.store.unlock().await;
        recorded
    }
}

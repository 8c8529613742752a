//! `user_sessions`: user-session audit events (a session begun, a session ended), the
//! record of who actually uses the tenant, read incrementally on `eventTime`.
//!
//! Qlik keeps audit events online for 90 days (`/v1/audits`, retention `EventTTL` in
//! `/v1/audits/settings`) and moves older days to the archive (`/v1/audits/archive?date=`,
//! where `ArchiveEnabled`); https://qlik.dev/apis/rest/audits. The session event types
//! are the ones `/v1/audits/types` lists with `user-session` in their name (the legacy
//! `com.qlik.user-session.begin`/`.end` and the current `com.qlik.core.user-session.begun`/
//! `.ended`, https://qlik.dev/apis/event/core/user-sessions).
//!
//! A sync starts at the saved cursor less `sessions_lookback`, else at `sessions_start`,
//! else at the start of the online window. Days before the online window come from the
//! archive, one request per day, with a checkpoint after each; the online events follow,
//! one listing per type in ascending `eventTime`, read side by side (`Chain::alongside`),
//! with checkpoints as far as the least advanced of them, so no checkpoint passes events
//! of a type not yet read that far. A session event type not listed by `/v1/audits/types` is skipped
//! in the archive too. Rows are keyed by `eventId`, which the archive and the online
//! listing share, so a day read from both, or read again by the look-back, is upserted.

use std::sync::Arc;

use async_trait::async_trait;
use connector_api::cursor::Cursor;
use connector_api::read::{Chain, Page, Pages, Plan, Source};
use connector_api::{LogLevel, Result};
use futures::StreamExt;
use serde_json::{Map, Value};
use time::{Date, Duration, OffsetDateTime, Time};

use super::license_consumption::fallback_id;
use super::{Access, StreamDef, Ty, col, derived};
use crate::read::{Ctx, MAX_LIMIT, Tenant, expect_object, get_object};

/// How long Qlik keeps audit events online when `/v1/audits/settings` does not say: 90 days.
pub const DEFAULT_RETENTION: Duration = Duration::days(90);

/// The `user_sessions` stream.
pub const USER_SESSIONS: StreamDef = StreamDef {
    name: "user_sessions",
    description: "User-session audit events (session begun or ended): who used the tenant and when. Incremental on event_time.",
    primary_key: &["event_id"],
    cursor: Some("event_time"),
    access: Access::AdminOnly,
    fields: &[
        col("event_id", "eventId", Ty::String, "Event id, shared by the online listing and the archive."),
        col(
            "event_time",
            "eventTime",
            Ty::DateTime,
            "When the session began or ended; the incremental cursor.",
        ),
        col(
            "event_type",
            "eventType",
            Ty::String,
            "com.qlik.user-session.begin or .end, com.qlik.core.user-session.begun or .ended (other values kept as text).",
        ),
        col("user_id", "userId", Ty::String, "User id of the session's user."),
        col("id", "id", Ty::String, "Audit record id (online events only)."),
        col("source", "source", Ty::String, "Service that reported the event."),
        col("tenant_id", "tenantId", Ty::String, "Tenant id."),
        col("event_type_version", "eventTypeVersion", Ty::String, "Version of the event type."),
        col("data", "data", Ty::Object, "Event details as Qlik sent them (session id, identity provider …)."),
        col("extensions", "extensions", Ty::Object, "Event metadata (actor, owner, space …)."),
        derived("from_archive", Ty::Boolean, "Whether the event was read from the audit archive."),
    ],
    consumed: &["links", "contentType"],
};

/// Reads session events from where the last sync stopped: the archived days first (in
/// ascending order, so the engine checkpoints after each), then the online events of every
/// session type (checkpointed once all are read).
pub struct UserSessions;

#[async_trait]
impl Source<Tenant> for UserSessions {
    fn streams(&self) -> &'static [&'static StreamDef] {
        &[&USER_SESSIONS]
    }

    async fn plan(&self, ctx: &Ctx) -> Result<Plan> {
        let tenant = ctx.connector.clone();
        let settings = &tenant.settings;
        let from = match (&ctx.resume, &settings.sessions_start) {
            (Some(cursor), _) => Some(cursor.at - settings.sessions_lookback),
            (None, Some(start)) => Cursor::parse(start).map(|c| c.at),
            (None, None) => None,
        };
        let types = Arc::new(session_types(ctx).await?);
        if types.is_empty() {
            let warning = "The tenant lists no user-session audit event types; user_sessions is empty";
            ctx.log(LogLevel::Warn, warning).await?;
            return Ok(Plan::nothing());
        }
        let now = OffsetDateTime::now_utc();
        let mut chains = Vec::new();
        if let Some(from) = from
            && let Some(days) = archived_days(ctx, from, now).await?
        {
            let types = types.clone();
            let archive = Chain::new(archive_pages(tenant.clone(), days), move |event, out| {
                let wanted = event
                    .get("eventType")
                    .and_then(Value::as_str)
                    .is_some_and(|t| types.iter().any(|s| s == t));
                if wanted {
                    out.push(&USER_SESSIONS, record(event, true));
                }
                Ok(())
            });
            chains.push(archive.ascending());
        }
        // One listing per session type, side by side over the same stretch of time: each
        // ascends, so the checkpoint follows the least advanced of them.
        let online = types.iter().enumerate().map(|(i, event_type)| {
            let mut query = vec![
                ("eventType", event_type.clone()),
                ("sort", "+eventTime".to_string()),
                ("limit", tenant.limit(MAX_LIMIT)),
            ];
            if let Some(from) = from {
                query.push(("eventTime", format!("{}/{}", Cursor::at(from).raw(), Cursor::at(now).raw())));
            }
            let chain = Chain::new(tenant.pages(tenant.url("/api/v1/audits", &query)), |event, out| {
                out.push(&USER_SESSIONS, record(event, false));
                Ok(())
            })
            .ascending();
            if i == 0 { chain } else { chain.alongside() }
        });
        chains.extend(online);
        Ok(Plan::chains(chains))
    }
}

/// The session event types among those `/v1/audits/types` lists.
async fn session_types(ctx: &Ctx) -> Result<Vec<String>> {
    let listed = get_object(ctx, ctx.connector.url("/api/v1/audits/types", &[])).await?;
    let types = listed.get("data").and_then(Value::as_array).into_iter().flatten();
    Ok(types.filter_map(Value::as_str).filter(|t| t.contains("user-session")).map(str::to_string).collect())
}

/// The days from `from` to the first day of the online window to read from the archive,
/// when `from` is older than the window; `None` when there are none, or the tenant keeps
/// no archive (with a warning).
async fn archived_days(ctx: &Ctx, from: OffsetDateTime, now: OffsetDateTime) -> Result<Option<Vec<Date>>> {
    let settings = get_object(ctx, ctx.connector.url("/api/v1/audits/settings", &[])).await?;
    let data = settings.get("data");
    let retention = data
        .and_then(|d| d.get("EventTTL"))
        .and_then(Value::as_i64)
        .map_or(DEFAULT_RETENTION, Duration::seconds);
    let online_from = now - retention;
    if from >= online_from {
        return Ok(None);
    }
    if data.and_then(|d| d.get("ArchiveEnabled")).and_then(Value::as_bool) != Some(true) {
        let message = format!(
            "Session events before {} are past Qlik's online retention and the tenant keeps no audit archive; user_sessions starts there",
            Cursor::at(online_from).raw()
        );
        ctx.log(LogLevel::Warn, message).await?;
        return Ok(None);
    }
    let days = std::iter::successors(Some(from.date()), |day| day.next_day());
    Ok(Some(days.take_while(|day| *day <= online_from.date()).collect()))
}

/// One page per archived day: `/v1/audits/archive?date=` answers a day's events at once.
fn archive_pages(tenant: Arc<Tenant>, days: Vec<Date>) -> Pages {
    futures::stream::iter(days)
        .then(move |day| {
            let tenant = tenant.clone();
            async move {
                let mut events = Vec::new();
                let url = tenant.url("/api/v1/audits/archive", &[("date", day.to_string())]);
                let (_, archived) = tenant.client.get_json(&url, &mut events).await?;
                let items = match expect_object(&url, archived)?.remove("data") {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                let events_of_day = items.into_iter().filter_map(|item| match item {
                    Value::Object(event) => Some(Ok(event)),
                    _ => None,
                });
                Ok(Page::new(events_of_day.collect::<Vec<_>>(), events).through(Cursor::at(end_of(day))))
            }
        })
        .boxed()
}

/// The first instant after `day`, UTC.
fn end_of(day: Date) -> OffsetDateTime {
    day.next_day().unwrap_or(day).with_time(Time::MIDNIGHT).assume_utc()
}

/// The record of one event, keyed by its `eventId` (else its audit `id`, else a hash of its
/// fields).
fn record(mut event: Map<String, Value>, from_archive: bool) -> Value {
    if event.get("eventId").and_then(Value::as_str).is_none_or(str::is_empty) {
        let id = match event.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => fallback_id(&event),
        };
        event.insert("eventId".into(), Value::String(id));
    }
    USER_SESSIONS.record(event, &[("from_archive", Value::Bool(from_archive))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::format_description::well_known::Rfc3339;

    #[test]
    fn a_day_ends_at_the_next_midnight() {
        let day = Date::from_calendar_date(2026, time::Month::February, 28).unwrap();
        assert_eq!(Cursor::at(end_of(day)).raw(), "2026-03-01T00:00:00Z");
        assert_eq!(OffsetDateTime::parse("2026-03-01T00:00:00Z", &Rfc3339).unwrap(), end_of(day));
    }
}

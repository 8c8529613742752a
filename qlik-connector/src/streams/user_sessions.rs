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
//! per type in ascending `eventTime`, with a checkpoint once every type is read (the
//! types are listed one after the other, so an earlier checkpoint could pass events of a
//! type not yet read). Rows are keyed by `eventId`, which the archive and the online
//! listing share, so a day read from both, or read again by the look-back, is upserted.

use connector_api::{LogLevel, Result, StreamEvent};
use futures::TryStreamExt;
use serde_json::{Map, Value};
use time::{Date, Duration, OffsetDateTime, Time};

use super::cursor::Cursor;
use super::license_consumption::fallback_id;
use super::{StreamDef, Ty, col, derived};
use crate::pagination::pages;
use crate::read::{Ctx, get_object};

/// Largest `limit` the endpoint accepts.
pub const MAX_LIMIT: u32 = 100;

/// How long Qlik keeps audit events online when `/v1/audits/settings` does not say: 90 days.
pub const DEFAULT_RETENTION: Duration = Duration::days(90);

/// The checkpoint's field.
const CURSOR_FIELD: &str = "event_time";

/// The `user_sessions` stream.
pub const USER_SESSIONS: StreamDef = StreamDef {
    name: "user_sessions",
    description: "User-session audit events (session begun or ended): who used the tenant and when. Incremental on event_time.",
    primary_key: &["event_id"],
    cursor: Some("event_time"),
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

/// Reads session events from where the last sync stopped.
pub async fn run(ctx: &Ctx) -> Result<()> {
    let name = USER_SESSIONS.name;
    let saved = ctx.checkpoint(name).and_then(|v| Cursor::from_state(v, CURSOR_FIELD));
    let from = match (&saved, &ctx.settings.sessions_start) {
        (Some(cursor), _) => Some(cursor.at - ctx.settings.sessions_lookback),
        (None, Some(start)) => Cursor::parse(start).map(|c| c.at),
        (None, None) => None,
    };
    let types = session_types(ctx).await?;
    if types.is_empty() {
        return ctx
            .out
            .log(LogLevel::Warn, "The tenant lists no user-session audit event types; user_sessions is empty")
            .await;
    }
    let now = OffsetDateTime::now_utc();
    let mut latest = saved;
    if let Some(from) = from {
        backfill(ctx, &types, from, now, &mut latest).await?;
    }
    for event_type in &types {
        let mut query = vec![
            ("eventType", event_type.clone()),
            ("sort", "+eventTime".to_string()),
            ("limit", ctx.settings.limit(MAX_LIMIT).to_string()),
        ];
        if let Some(from) = from {
            query.push(("eventTime", format!("{}/{}", Cursor::at(from).raw(), Cursor::at(now).raw())));
        }
        let mut pages = std::pin::pin!(pages(ctx.client.clone(), ctx.url("/api/v1/audits", &query)));
        while let Some(page) = pages.try_next().await? {
            ctx.out.http_events(name, &page.events).await?;
            let mut n = 0;
            for event in page.records() {
                emit(ctx, event?, false, &mut latest).await?;
                n += 1;
            }
            ctx.out.status(name, StreamEvent::PageFetched { records: n }).await?;
        }
    }
    match &latest {
        Some(latest) => ctx.out.state(name, latest.to_state(CURSOR_FIELD)).await,
        None => Ok(()),
    }
}

/// The session event types among those `/v1/audits/types` lists.
async fn session_types(ctx: &Ctx) -> Result<Vec<String>> {
    let listed = get_object(ctx, USER_SESSIONS.name, ctx.url("/api/v1/audits/types", &[])).await?;
    let types = listed.get("data").and_then(Value::as_array).into_iter().flatten();
    Ok(types.filter_map(Value::as_str).filter(|t| t.contains("user-session")).map(str::to_string).collect())
}

/// Reads the archived days from `from` to the first day of the online window, when
/// `from` is older than the window, checkpointing the end of each day.
async fn backfill(
    ctx: &Ctx,
    types: &[String],
    from: OffsetDateTime,
    now: OffsetDateTime,
    latest: &mut Option<Cursor>,
) -> Result<()> {
    let name = USER_SESSIONS.name;
    let settings = get_object(ctx, name, ctx.url("/api/v1/audits/settings", &[])).await?;
    let data = settings.get("data");
    let retention = data
        .and_then(|d| d.get("EventTTL"))
        .and_then(Value::as_i64)
        .map_or(DEFAULT_RETENTION, Duration::seconds);
    let online_from = now - retention;
    if from >= online_from {
        return Ok(());
    }
    if data.and_then(|d| d.get("ArchiveEnabled")).and_then(Value::as_bool) != Some(true) {
        let message = format!(
            "Session events before {} are past Qlik's online retention and the tenant keeps no audit archive; user_sessions starts there",
            Cursor::at(online_from).raw()
        );
        return ctx.out.log(LogLevel::Warn, message).await;
    }
    let mut day = from.date();
    while day <= online_from.date() {
        let date = day.to_string();
        let archived = get_object(ctx, name, ctx.url("/api/v1/audits/archive", &[("date", date)])).await?;
        let events = match archived.get("data") {
            Some(Value::Array(events)) => events.clone(),
            _ => Vec::new(),
        };
        let mut n = 0;
        for event in events {
            let Value::Object(event) = event else { continue };
            if event.get("eventType").and_then(Value::as_str).is_some_and(|t| types.iter().any(|s| s == t)) {
                emit(ctx, event, true, latest).await?;
                n += 1;
            }
        }
        ctx.out.status(name, StreamEvent::PageFetched { records: n }).await?;
        let Some(next) = day.next_day() else { break };
        Cursor::advance(latest, Cursor::at(end_of(day)));
        if let Some(latest) = latest.as_ref() {
            ctx.out.state(name, latest.to_state(CURSOR_FIELD)).await?;
        }
        day = next;
    }
    Ok(())
}

/// The first instant after `day`, UTC.
fn end_of(day: Date) -> OffsetDateTime {
    day.next_day().unwrap_or(day).with_time(Time::MIDNIGHT).assume_utc()
}

/// Emits one event, keyed by its `eventId` (else its audit `id`, else a hash of its fields).
async fn emit(
    ctx: &Ctx,
    mut event: Map<String, Value>,
    from_archive: bool,
    latest: &mut Option<Cursor>,
) -> Result<()> {
    if event.get("eventId").and_then(Value::as_str).is_none_or(str::is_empty) {
        let id = match event.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_string(),
            _ => fallback_id(&event),
        };
        event.insert("eventId".into(), Value::String(id));
    }
    if let Some(at) = event.get("eventTime").and_then(Value::as_str).and_then(Cursor::parse) {
        Cursor::advance(latest, at);
    }
    let record = USER_SESSIONS.record(event, &[("from_archive", Value::Bool(from_archive))]);
    ctx.out.record(USER_SESSIONS.name, record).await
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

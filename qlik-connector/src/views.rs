//! The views SQL destinations keep beside the Qlik tables.
//!
//! `licence_usage` answers the question a software-asset-management hub asks first:
//! which paid seats can be reclaimed. One row per licence assignment of a user on the
//! tenant (orphans, whose subject has no user here, are left out), with the user's last
//! login (`user_sessions`), last app use (`license_consumption`) and the days since the
//! later of the two, or since the seat was assigned when the user never did either.

use connector_api::ViewDescriptor;

/// Every view of the connector.
pub const ALL: &[ViewDescriptor] = &[LICENCE_USAGE];

/// Per tenant and licence assignment: who holds it, when they last used Qlik, how many
/// days idle.
pub const LICENCE_USAGE: ViewDescriptor = ViewDescriptor {
    name: "licence_usage",
    description: "Per tenant and licence assignment of a user on the tenant: the licence type, the user's last login and last app use, and days_idle, the whole days since the later of the two (since the assignment when the user did neither).",
    requires: &["users", "license_assignments", "license_consumption", "user_sessions"],
    // Days between two times is dialect arithmetic (julianday, extract epoch): no portable
    // form, so a destination of another dialect leaves the view out.
    dialects: &[("sqlite", SQLITE), ("postgres", POSTGRES)],
    portable: None,
};

/// `licence_usage` in SQLite.
const SQLITE: &str = "SELECT *, CAST(julianday('now') - julianday(coalesce(last_active, assigned_at)) AS INTEGER) AS days_idle FROM (
  SELECT a._instance AS _instance, u.id AS user_id, coalesce(u.name, a.name) AS name, u.email AS email,
         u.status AS status, a.subject AS subject, a.type AS licence_type, a.excess AS excess,
         a.created AS assigned_at, s.last_login AS last_login, c.last_app_use AS last_app_use,
         CASE WHEN s.last_login IS NULL THEN c.last_app_use
              WHEN c.last_app_use IS NULL THEN s.last_login
              WHEN julianday(s.last_login) >= julianday(c.last_app_use) THEN s.last_login
              ELSE c.last_app_use END AS last_active
  FROM {license_assignments} a
  JOIN {users} u ON u._instance = a._instance AND u.subject = a.subject
  LEFT JOIN (SELECT _instance, user_id, max(event_time) AS last_login
             FROM {user_sessions} GROUP BY _instance, user_id) s
         ON s._instance = a._instance AND s.user_id = u.id
  LEFT JOIN (SELECT _instance, user_id, max(end_time) AS last_app_use
             FROM {license_consumption} GROUP BY _instance, user_id) c
         ON c._instance = a._instance AND c.user_id = u.id
  WHERE a.orphan IS NOT 1
)";

/// `licence_usage` in PostgreSQL.
const POSTGRES: &str = "SELECT *, floor(extract(epoch FROM now() - coalesce(last_active, assigned_at)) / 86400)::bigint AS days_idle FROM (
  SELECT a._instance AS _instance, u.id AS user_id, coalesce(u.name, a.name) AS name, u.email AS email,
         u.status AS status, a.subject AS subject, a.type AS licence_type, a.excess AS excess,
         a.created AS assigned_at, s.last_login AS last_login, c.last_app_use AS last_app_use,
         greatest(s.last_login, c.last_app_use) AS last_active
  FROM {license_assignments} a
  JOIN {users} u ON u._instance = a._instance AND u.subject = a.subject
  LEFT JOIN (SELECT _instance, user_id, max(event_time) AS last_login
             FROM {user_sessions} GROUP BY _instance, user_id) s
         ON s._instance = a._instance AND s.user_id = u.id
  LEFT JOIN (SELECT _instance, user_id, max(end_time) AS last_app_use
             FROM {license_consumption} GROUP BY _instance, user_id) c
         ON c._instance = a._instance AND c.user_id = u.id
  WHERE a.orphan IS NOT TRUE
) usage";

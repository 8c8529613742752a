//! consumption/executions: a capacity tenant's metering records, as
//! https://qlik.dev/apis/rest/consumption describes the endpoint: `limit` 1 to 200 (default
//! 20), `page` cursors or an `offset`, `sort` on `periodstart`/`periodend` (default
//! `-periodstart`), `periodsToInclude`, `actionToBlock` and a SCIM `filter` on the fields it
//! lists; `totalCount` and `currentPageCount` on every page.

use serde_json::{Value, json};

use crate::http::{ApiError, Ctx, Reply};
use crate::paging;
use crate::scim;
use crate::tenant::{EXECUTION_PERIODS, Tenant};

/// The tag of this listing's `page` cursors.
const TAG: &str = "executions";

/// Filterable attributes (the definition's list, lower case) and the record fields they
/// read; `scope` (an array) and `actiontoblock` (inside `enforcement`) are refused by the
/// simulator rather than guessed at.
const FILTERABLE: [(&str, &str); 18] = [
    ("resourcetype", "resourceType"),
    ("resourceaction", "resourceAction"),
    ("resourceid", "resourceId"),
    ("capacitylimit", "capacityLimit"),
    ("localusage", "localUsage"),
    ("globalusage", "globalUsage"),
    ("overage", "overage"),
    ("blocked", "blocked"),
    ("periodtype", "periodType"),
    ("periodstart", "periodStart"),
    ("periodend", "periodEnd"),
    ("consumptionreportid", "consumptionReportId"),
    ("blockedeventtime", "blockedEventTime"),
    ("overageeventtime", "overageEventTime"),
    ("taskname", "taskName"),
    ("taskdescription", "taskDescription"),
    ("userid", "userId"),
    ("tenantid", "tenantId"),
];

/// Every value of an array parameter, whether repeated (`sort=a&sort=b`) or joined with
/// commas (`sort=a,b`).
fn array_param<'a>(ctx: &'a Ctx, name: &str) -> Vec<&'a str> {
    ctx.query.iter().filter(|(k, _)| k == name).flat_map(|(_, v)| v.split(',')).map(str::trim).collect()
}

/// Whether the request sorts descending; 400 for a value outside the definition's enum.
fn descending(ctx: &Ctx) -> Result<bool, ApiError> {
    let mut first = None;
    for v in array_param(ctx, "sort") {
        let desc = match v {
            "periodstart" | "+periodstart" | "periodend" | "+periodend" => false,
            "-periodstart" | "-periodend" => true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid query parameter `sort`: `{other}`; one of periodstart, -periodstart, +periodstart, periodend, -periodend, +periodend."
                )));
            }
        };
        first.get_or_insert(desc);
    }
    // Periods do not overlap, so start and end order alike; `-periodstart` is the default.
    Ok(first.unwrap_or(true))
}

/// The periods `periodsToInclude` names (every period without it).
fn periods(ctx: &Ctx) -> Result<Vec<usize>, ApiError> {
    let values = array_param(ctx, "periodsToInclude");
    if values.is_empty() {
        return Ok((0..EXECUTION_PERIODS.len()).collect());
    }
    let current = EXECUTION_PERIODS.len() - 1;
    let mut out = Vec::new();
    for v in values {
        match v {
            "current" => out.push(current),
            "previous" => out.push(current - 1),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Invalid query parameter `periodsToInclude`: `{other}`; current or previous."
                )));
            }
        }
    }
    Ok(out)
}

/// The value of filter attribute `attr` in `record`, as text.
fn attr(record: &Value, attr: &str) -> Result<Option<String>, String> {
    let lower = attr.to_ascii_lowercase();
    let Some((_, field)) = FILTERABLE.iter().find(|(a, _)| *a == lower) else {
        return Err(format!(
            "`{attr}` is not filterable by the simulator; it filters on {}",
            FILTERABLE.map(|(a, _)| a).join(", ")
        ));
    };
    Ok(match &record[*field] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    })
}

/// `GET /api/v1/consumption/executions`. On a user-based tenant the answer is 404: the
/// endpoint serves the consumption metrics of the Administration activity center
/// (https://qlik.dev/apis/rest/consumption: "used for the consumption metrics in the admin
/// console"), the detailed consumption of which exists for capacity-based subscriptions only
/// (https://help.qlik.com/en-US/cloud-services/Subsystems/Hub/Content/Sense_Hub/Admin/usage-metrics-app.htm),
/// and the only answer the definition lists besides a listing and a server error is 404
/// "Resource does not exist." Qlik publishes nothing more precise; 404 is the stricter of
/// the two plausible answers (an empty listing being the other): a client must survive it.
///
/// Next and prev links carry only `limit` and `page` (Qlik documents nothing else they
/// keep), so a client that follows them verbatim loses its `filter`, `sort` and
/// `periodsToInclude`, which the cursor does not remember either.
pub(crate) fn executions(t: &Tenant, ctx: &Ctx) -> Result<Reply, ApiError> {
    let limit = paging::limit(ctx, 20, 200)?;
    let descending = descending(ctx)?;
    let periods = periods(ctx)?;
    let filter = match ctx.param("filter") {
        None => None,
        Some(f) => {
            Some(scim::parse(f).map_err(|e| ApiError::bad_request(format!("Invalid `filter`: {e}.")))?)
        }
    };
    if let Some(f) = &filter {
        // Surface an unsupported attribute even when nothing is listed.
        f.eval(&|a| attr(&json!({}), a))
            .map_err(|e| ApiError::bad_request(format!("Invalid `filter`: {e}.")))?;
    }
    let start = match (ctx.param("page"), ctx.param("offset")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("Query parameters `page` and `offset` cannot be combined."));
        }
        (Some(token), None) => paging::decode(TAG, "page", token)?,
        (None, Some(raw)) => raw.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "Invalid query parameter `offset`: `{raw}` is not an integer of 0 or more."
            ))
        })?,
        (None, None) => 0,
    };
    if !t.executions_listed() {
        return Err(ApiError::not_found(
            "Resource does not exist: this tenant has no capacity-based subscription to meter.",
        ));
    }
    let action = ctx.param("actionToBlock");
    let mut listed: Vec<(usize, Value)> = (0..t.executions())
        .filter(|i| periods.contains(&t.execution_period(*i)))
        .map(|i| (t.execution_period(i), t.execution_json(i)))
        .filter(|(_, r)| filter.as_ref().is_none_or(|f| f.eval(&|a| attr(r, a)).unwrap_or(false)))
        .filter(|(_, r)| {
            action.is_none_or(|a| {
                r["enforcement"].as_array().into_iter().flatten().any(|e| e["actionToBlock"] == a)
            })
        })
        .collect();
    if descending {
        // Stable: within a period the records keep their order.
        listed.sort_by_key(|(p, _)| std::cmp::Reverse(*p));
    }
    let total = listed.len() as u64;
    let from = start.min(total);
    let to = (from + limit).min(total);
    let data: Vec<Value> = listed.drain(from as usize..to as usize).map(|(_, r)| r).collect();
    let link = |kind: &str, pos: u64| {
        let token = paging::encode(TAG, pos);
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("limit", &limit.to_string())
            .append_pair("page", &token)
            .finish();
        json!({"href": format!("{}{}?{query}", ctx.base(), ctx.path), "type": kind, "token": token})
    };
    let mut links = json!({"self": {"href": ctx.self_href()}});
    if to < total {
        links["next"] = link("next", to);
    }
    if from > 0 {
        links["prev"] = link("prev", from.saturating_sub(limit));
    }
    let (overage, close) = t.executions_flags();
    Ok(Reply::ok(json!({
        "totalCount": total,
        "currentPageCount": data.len(),
        "data": data,
        "links": links,
        "overage": overage,
        "closeToOverage": close,
        "globalUsageAvailable": true,
    })))
}

//! `GET /v1/events?after=<cursor>&wait=<seconds>`: the outbox as a long-poll feed for
//! reviewers, needing no broker. It answers at once when events after the cursor
//! exist; otherwise it waits (up to `wait`, at most 60 s) for the next commit that adds
//! events and answers then, or with an empty page when the time is up. Events are
//! those of the tenants the reviewer is granted, in outbox order.

use std::time::Duration;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{Reviewer, unavailable};
use crate::frontends::https::{Https, problem};

const MAX_WAIT_SECS: u64 = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// The `next` value of the previous answer; 0 or absent = from the start.
    after: Option<String>,
    /// Seconds to wait for events when there are none yet (`30` or `30s`).
    wait: Option<String>,
    limit: Option<u32>,
}

fn seconds(s: &str) -> Option<u64> {
    s.strip_suffix('s').unwrap_or(s).parse().ok()
}

/// `GET /v1/events`.
pub async fn events(
    State(s): State<Https>,
    reviewer: Reviewer,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    feed(&s, reviewer.grant.as_deref(), query).await
}

/// `GET /v1/hospital/events`: the same feed for a hospital, of its own files only —
/// checked, indexed, downloaded, expired unread (rule 19).
pub async fn hospital_events(
    State(s): State<Https>,
    caller: crate::frontends::https::auth::Caller,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let own = [caller.who.tenant.clone()];
    feed(&s, Some(&own), query).await
}

async fn feed(
    s: &Https,
    grant: Option<&[String]>,
    query: Result<Query<FeedQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let bad = |d: &str| problem(StatusCode::BAD_REQUEST, "http.bad_query", d);
    let Ok(Query(q)) = query else {
        return bad("query parameters: after, wait, limit");
    };
    let Ok(after) = q.after.as_deref().unwrap_or("0").parse::<i64>() else {
        return bad("after: a `next` value");
    };
    let Some(wait) = q.wait.as_deref().map_or(Some(0), seconds) else {
        return bad("wait: seconds, e.g. 30 or 30s");
    };
    let limit = i64::from(q.limit.unwrap_or(100).clamp(1, 1000));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait.min(MAX_WAIT_SECS));
    let mut changes = s.app.catalog.outbox_watch();
    loop {
        // Marked seen before the query, so a commit after it wakes the wait below.
        changes.borrow_and_update();
        let rows = match s.app.catalog.outbox_after(after, grant, limit).await {
            Ok(r) => r,
            Err(e) => return unavailable(&e),
        };
        let done = !rows.is_empty() || tokio::time::Instant::now() >= deadline;
        if done {
            let next = rows.last().map_or(after, |e| e.seq);
            let events: Vec<_> = rows
                .into_iter()
                .map(|e| {
                    let mut p = e.payload;
                    p["seq"] = json!(e.seq);
                    p
                })
                .collect();
            return Json(json!({ "events": events, "next": next.to_string() })).into_response();
        }
        if tokio::time::timeout_at(deadline, changes.changed())
            .await
            .is_err()
        {
            continue; // time is up: one last look, then answer
        }
    }
}

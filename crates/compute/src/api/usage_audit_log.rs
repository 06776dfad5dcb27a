//! `os-instance_usage_audit_log`: how the periodic instance usage audit went on each compute
//! host for the last completed month. Nova runs that audit only with `instance_usage_audit`
//! on (off by default), to emit usage notifications; ferrostack has no notification bus, so
//! no audit runs and every compute host is reported as not run, as Nova does by default.
//! Usage itself is served by `os-simple-tenant-usage`.

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Utc};
use ferrostack_api::{ApiError, Auth};
use serde_json::{json, Value};

use super::State;
use crate::ComputeService;

pub fn routes() -> Router<std::sync::Arc<ComputeService>> {
    Router::new()
        .route("/os-instance_usage_audit_log", get(list))
        .route("/os-instance_usage_audit_log/{before}", get(show))
}

/// The last audit period (a calendar month) completed before `before`: (first day of the
/// previous month, first day of the month of `before`), as Nova's default "month" period.
fn last_completed_month(before: NaiveDateTime) -> (NaiveDateTime, NaiveDateTime) {
    let d = before.date();
    let (y, m) = if d.month() == 1 {
        (d.year() - 1, 12)
    } else {
        (d.year(), d.month() - 1)
    };
    // The first of a month at midnight exists in every year chrono represents; `before`'s
    // own date falls back on itself should chrono ever disagree.
    let first = |y, m| {
        NaiveDate::from_ymd_opt(y, m, 1)
            .unwrap_or(d)
            .and_time(chrono::NaiveTime::MIN)
    };
    (first(y, m), first(d.year(), d.month()))
}

async fn audit_log(svc: &ComputeService, before: NaiveDateTime) -> Result<Value, ApiError> {
    let (begin, end) = last_completed_month(before);
    // Disabled compute services count too: they can hold instances.
    let hosts = svc.compute_host_names().await?;
    let n = hosts.len();
    Ok(json!({
        "period_beginning": begin.format("%Y-%m-%d %H:%M:%S").to_string(),
        "period_ending": end.format("%Y-%m-%d %H:%M:%S").to_string(),
        "num_hosts": n,
        "num_hosts_done": 0,
        "num_hosts_running": 0,
        "num_hosts_not_run": n,
        "hosts_not_run": hosts,
        "total_instances": 0,
        "total_errors": 0,
        "overall_status": if n == 0 {
            "ALL hosts done. 0 errors.".to_string()
        } else {
            format!("0 of {n} hosts done. 0 errors.")
        },
        "log": {},
    }))
}

async fn list(svc: State, auth: Auth) -> Result<Response, ApiError> {
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-instance-usage-audit-log:list",
        &json!({}),
    )?;
    let log = audit_log(&svc, Utc::now().naive_utc()).await?;
    Ok(axum::Json(json!({"instance_usage_audit_logs": log})).into_response())
}

/// `{before}` is `YYYY-MM-DD HH:MM:SS[.ffffff]`.
async fn show(svc: State, auth: Auth, Path(before): Path<String>) -> Result<Response, ApiError> {
    auth.enforce(
        &svc.policy,
        "os_compute_api:os-instance-usage-audit-log:show",
        &json!({}),
    )?;
    let format = if before.contains('.') {
        "%Y-%m-%d %H:%M:%S%.f"
    } else {
        "%Y-%m-%d %H:%M:%S"
    };
    let at = NaiveDateTime::parse_from_str(&before, format)
        .map_err(|_| ApiError::bad_request(format!("Invalid timestamp for date {before}")))?;
    let log = audit_log(&svc, at).await?;
    Ok(axum::Json(json!({"instance_usage_audit_log": log})).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_completed_month() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(
            last_completed_month(at("2026-11-22 10:00:00")),
            (at("2026-10-01 00:00:00"), at("2026-11-01 00:00:00"))
        );
        assert_eq!(
            last_completed_month(at("2026-01-01 00:00:00")),
            (at("2025-12-01 00:00:00"), at("2026-01-01 00:00:00"))
        );
    }
}

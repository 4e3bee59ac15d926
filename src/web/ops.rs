//! Liveness, readiness, metrics and the static assets.

use super::State;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpResponse, web};
use serde_json::json;
use std::time::Duration;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(json!({"status": "ok"}))
}

/// 200 only when both the database and the ephemeral store answer.
pub async fn readyz(state: State) -> HttpResponse {
    let store = state.services.store.clone();
    let db = tokio::task::spawn_blocking(move || store.ping(CHECK_TIMEOUT)).await;
    let db_ok = matches!(db, Ok(Ok(())));
    if let Ok(Err(e)) = &db {
        tracing::warn!(error = %e, "readiness: database unreachable");
    }
    let eph = tokio::time::timeout(CHECK_TIMEOUT, state.services.ephemeral.ping()).await;
    let eph_ok = matches!(eph, Ok(Ok(())));
    // An answer that is not ready (an evicting Redis policy) says why; an
    // unreachable store says only that.
    let eph_word = match &eph {
        Ok(Ok(())) => "ok".to_string(),
        Ok(Err(e)) if e.kind == crate::error::ErrorKind::Unavailable && e.detail().is_none() => {
            tracing::warn!(error = %e, "readiness: ephemeral store not safe to use");
            e.public().to_string()
        }
        _ => {
            tracing::warn!("readiness: ephemeral store unreachable");
            "unreachable".to_string()
        }
    };
    let word = |ok| if ok { "ok" } else { "unreachable" };
    let ready = db_ok && eph_ok;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(json!({
            "status": if ready { "ready" } else { "unavailable" },
            "database": word(db_ok),
            "ephemeral": eph_word,
        }))
}

pub async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(state.metrics.render())
}

/// Assets are compiled in, so the binary runs from any directory.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "autosubmit.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/autosubmit.js"),
    ),
    (
        "webauthn.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/webauthn.js"),
    ),
];

pub async fn static_file(name: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|(n, _, _)| *n == name.as_str()) {
        Some((_, mime, body)) => HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, *mime))
            .insert_header((CACHE_CONTROL, "public, max-age=3600"))
            .body(*body),
        None => {
            super::page::error_page(StatusCode::NOT_FOUND, "Not found", "There is no such file.")
        }
    }
}

//! One middleware for every request: a request ID (kept from `X-Request-Id`
//! when sane, else new), a tracing span carrying it, an access log line and
//! the request metrics.
//!
//! Logs name the route pattern (`/invite/{token}`), never the raw path or
//! query: paths and queries carry invitation secrets, codes, transaction IDs
//! and SAML messages.

use super::State;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::time::Instant;
use tracing::Instrument;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let id = request_id(&req);
    let route = req.match_pattern().unwrap_or_else(|| "unmatched".into());
    // Metrics and logs take the method from a fixed set: any other string a
    // client sends would otherwise become a new series, without bound.
    let method = match req.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "HEAD" | "OPTIONS" | "PATCH") => m,
        _ => "OTHER",
    }
    .to_string();
    let state = req.app_data::<State>().cloned();
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route);
    let result = next.call(req).instrument(span.clone()).await;
    let status = match &result {
        Ok(res) => res.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let elapsed = start.elapsed();
    if let Some(state) = state {
        state
            .metrics
            .observe_request(&route, &method, status.as_u16(), elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            latency_ms = elapsed.as_secs_f64() * 1000.0,
            "handled"
        )
    });
    let mut res = result?;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, v);
    }
    // Every 503 is a moment's overload or a dependency away: say when to
    // come back, so clients back off instead of hammering.
    if res.status() == actix_web::http::StatusCode::SERVICE_UNAVAILABLE {
        let headers = res.headers_mut();
        if !headers.contains_key(actix_web::http::header::RETRY_AFTER) {
            headers.insert(
                actix_web::http::header::RETRY_AFTER,
                HeaderValue::from_static("5"),
            );
        }
    }
    Ok(res)
}

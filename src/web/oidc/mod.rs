//! OpenID Connect / OAuth 2.0 endpoints.

mod authorize;
mod discovery;
mod logout;
mod register;
mod token;

use super::page::status_for;
use crate::error::{Error, ErrorKind};
use crate::protocol::oidc::discovery::paths;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use actix_web::{HttpResponse, web};
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::openid_configuration),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(discovery::openid_configuration),
    )
    .route(paths::JWKS, web::get().to(discovery::jwks))
    .route(paths::AUTHORIZE, web::get().to(authorize::get))
    .route(paths::AUTHORIZE, web::post().to(authorize::post))
    .route("/authorize/resume", web::get().to(authorize::resume))
    .route("/authorize/consent", web::post().to(authorize::consent))
    .route(paths::TOKEN, web::post().to(token::token))
    .route(paths::USERINFO, web::get().to(token::userinfo_get))
    .route(paths::USERINFO, web::post().to(token::userinfo_post))
    .route(paths::INTROSPECT, web::post().to(token::introspect))
    .route(paths::REVOKE, web::post().to(token::revoke))
    .route(paths::REGISTER, web::post().to(register::create))
    .route("/register/{client_id}", web::get().to(register::read))
    .route("/register/{client_id}", web::put().to(register::update))
    .route("/register/{client_id}", web::delete().to(register::delete))
    .route(paths::END_SESSION, web::get().to(logout::end_session_get))
    .route(paths::END_SESSION, web::post().to(logout::end_session_post))
    .route("/end-session/confirm", web::post().to(logout::confirm));
}

/// The OAuth `error` code for an error that did not name one.
fn code_for(e: &Error) -> &'static str {
    e.code().unwrap_or(match e.kind {
        ErrorKind::InvalidInput | ErrorKind::NotFound | ErrorKind::Conflict => "invalid_request",
        ErrorKind::Unauthenticated => "invalid_client",
        ErrorKind::Forbidden => "access_denied",
        ErrorKind::Throttled | ErrorKind::Unavailable | ErrorKind::Contention => {
            "temporarily_unavailable"
        }
        ErrorKind::Internal => "server_error",
    })
}

/// An RFC 6749 section 5.2 error response. `basic` says the client tried
/// HTTP Basic, which earns a `WWW-Authenticate` challenge on 401.
pub fn oauth_error(e: &Error, basic: bool) -> HttpResponse {
    let code = code_for(e);
    let status = match code {
        "invalid_client" | "invalid_token" => StatusCode::UNAUTHORIZED,
        "insufficient_scope" => StatusCode::FORBIDDEN,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        "temporarily_unavailable" => StatusCode::SERVICE_UNAVAILABLE,
        _ if e.kind == ErrorKind::NotFound => StatusCode::NOT_FOUND,
        _ => StatusCode::BAD_REQUEST,
    };
    if status.is_server_error() {
        tracing::error!(error = %e, "oauth request failed");
    } else {
        tracing::info!(code, error = %e, "oauth request refused");
    }
    let mut res = HttpResponse::build(status);
    res.insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"));
    match code {
        "invalid_client" if basic => {
            res.insert_header((WWW_AUTHENTICATE, "Basic realm=\"portcullis\""));
        }
        "invalid_token" | "insufficient_scope" => {
            let desc = e.public().replace('"', "'");
            res.insert_header((
                WWW_AUTHENTICATE,
                format!("Bearer error=\"{code}\", error_description=\"{desc}\""),
            ));
        }
        _ => {}
    }
    res.json(json!({"error": code, "error_description": e.public()}))
}

/// A JSON body that must not be cached (tokens, introspection).
pub fn no_store_json(status: StatusCode, body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header((PRAGMA, "no-cache"))
        .json(body)
}

/// Errors that must not reach the client become the HTML error page.
pub fn page_status(e: &Error) -> StatusCode {
    status_for(e.kind)
}

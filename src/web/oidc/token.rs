//! `/token`, `/userinfo`, `/introspect`, `/revoke`: JSON endpoints for
//! clients and resource servers.

use super::{no_store_json, oauth_error};
use crate::error::{Error, ErrorKind};
use crate::service::oidc::token::{ClientCredentials, TokenRequest};
use crate::web::State;
use actix_web::http::StatusCode;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use std::collections::HashMap;

/// Form parameters, refusing any given twice (RFC 6749 3.2).
fn form(body: &[u8]) -> Result<HashMap<String, String>, Error> {
    let mut map = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(Error::oauth(
                ErrorKind::InvalidInput,
                "invalid_request",
                format!("parameter {k} was given more than once"),
            ));
        }
    }
    Ok(map)
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn uses_basic(req: &HttpRequest) -> bool {
    authorization(req).is_some_and(|h| h.to_ascii_lowercase().starts_with("basic "))
}

fn credentials(req: &HttpRequest, f: &mut HashMap<String, String>) -> ClientCredentials {
    ClientCredentials {
        authorization: authorization(req),
        client_id: f.remove("client_id"),
        client_secret: f.remove("client_secret"),
        assertion_type: f.remove("client_assertion_type"),
        assertion: f.remove("client_assertion"),
    }
}

/// The form parameters of a request that must send a form.
fn form_body(req: &HttpRequest, body: &[u8]) -> Result<HashMap<String, String>, Error> {
    if !is_form(req) {
        return Err(Error::oauth(
            ErrorKind::InvalidInput,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    form(body)
}

pub async fn token(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let result = async {
        let mut f = form_body(&req, &body)?;
        let creds = credentials(&req, &mut f);
        let r = TokenRequest {
            grant_type: f.remove("grant_type"),
            code: f.remove("code"),
            redirect_uri: f.remove("redirect_uri"),
            code_verifier: f.remove("code_verifier"),
            refresh_token: f.remove("refresh_token"),
            scope: f.remove("scope"),
        };
        state.services.token_endpoint(&creds, r).await
    }
    .await;
    match result {
        Ok(t) => no_store_json(StatusCode::OK, &t),
        Err(e) => oauth_error(&e, uses_basic(&req)),
    }
}

/// The client's credentials and the `token` parameter: the start of
/// `/introspect` and `/revoke`.
fn credentials_and_token(
    req: &HttpRequest,
    body: &[u8],
) -> Result<(ClientCredentials, String), Error> {
    let mut f = form_body(req, body)?;
    let creds = credentials(req, &mut f);
    let token = f.remove("token").ok_or_else(|| {
        Error::oauth(
            ErrorKind::InvalidInput,
            "invalid_request",
            "token is missing",
        )
    })?;
    Ok((creds, token))
}

pub async fn introspect(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let result = async {
        let (creds, token) = credentials_and_token(&req, &body)?;
        state.services.introspect(&creds, &token).await
    }
    .await;
    match result {
        Ok(v) => no_store_json(StatusCode::OK, &v),
        Err(e) => oauth_error(&e, uses_basic(&req)),
    }
}

pub async fn revoke(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let result = async {
        let (creds, token) = credentials_and_token(&req, &body)?;
        state.services.revoke(&creds, &token).await
    }
    .await;
    match result {
        Ok(()) => no_store_json(StatusCode::OK, &serde_json::json!({})),
        Err(e) => oauth_error(&e, uses_basic(&req)),
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = authorization(req)?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

async fn userinfo(state: &State, token: Option<String>) -> HttpResponse {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        let e = Error::oauth(
            ErrorKind::Unauthenticated,
            "invalid_token",
            "no access token",
        );
        return oauth_error(&e, false);
    };
    match state.services.userinfo(&token).await {
        Ok(v) => no_store_json(StatusCode::OK, &v),
        Err(e) => oauth_error(&e, false),
    }
}

pub async fn userinfo_get(req: HttpRequest, state: State) -> HttpResponse {
    userinfo(&state, bearer(&req)).await
}

/// RFC 6750 2.2 allows the token in a form body as well as the header (not both).
pub async fn userinfo_post(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let from_body = if is_form(&req) {
        match form(&body) {
            Ok(mut f) => f.remove("access_token"),
            Err(e) => return oauth_error(&e, false),
        }
    } else {
        None
    };
    let token = match (bearer(&req), from_body) {
        (Some(_), Some(_)) => {
            let e = Error::oauth(
                ErrorKind::InvalidInput,
                "invalid_request",
                "send the access token once",
            );
            return oauth_error(&e, false);
        }
        (a, b) => a.or(b),
    };
    userinfo(&state, token).await
}

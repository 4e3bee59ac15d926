//! Dynamic client registration (RFC 7591) and management (RFC 7592).

use super::{no_store_json, oauth_error};
use crate::domain::Client;
use crate::error::{Error, ErrorKind};
use crate::protocol::oidc::discovery::paths;
use crate::protocol::oidc::registration::{ClientDraft, from_metadata, to_metadata};
use crate::service::oidc::clients::NewClient;
use crate::web::State;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

fn bearer(req: &HttpRequest) -> Result<String, Error> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.split_once(' '))
        .filter(|(s, t)| s.eq_ignore_ascii_case("bearer") && !t.is_empty())
        .map(|(_, t)| t.trim().to_string())
        .ok_or_else(|| {
            Error::oauth(
                ErrorKind::Unauthenticated,
                "invalid_token",
                "a bearer token is required",
            )
        })
}

fn body_json(body: &[u8]) -> Result<Value, Error> {
    serde_json::from_slice(body).map_err(|e| {
        Error::oauth(
            ErrorKind::InvalidInput,
            "invalid_client_metadata",
            format!("the body is not JSON: {e}"),
        )
    })
}

fn describe(state: &State, n: &NewClient) -> Value {
    let mut v = to_metadata(&n.client);
    if let Some(s) = &n.secret {
        v["client_secret"] = json!(s);
        v["client_secret_expires_at"] = json!(0);
    }
    if let Some(t) = &n.registration_token {
        v["registration_access_token"] = json!(t);
    }
    v["registration_client_uri"] = json!(format!(
        "{}{}/{}",
        state.issuer,
        paths::REGISTER,
        n.client.client_id
    ));
    v
}

pub async fn create(req: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    let result = async {
        let token = bearer(&req)?;
        let draft = draft_from(&body_json(&body)?)?;
        state.services.register_client(&token, draft).await
    }
    .await;
    match result {
        Ok(n) => no_store_json(StatusCode::CREATED, &describe(&state, &n)),
        Err(e) => oauth_error(&e, false),
    }
}

/// Reads registration metadata, with RFC 7591's error codes.
fn draft_from(v: &Value) -> Result<ClientDraft, Error> {
    from_metadata(v).map_err(|(c, m)| Error::oauth(ErrorKind::InvalidInput, c, m))
}

/// The answer to reading or updating a registered client: its metadata,
/// never its secret.
fn registered_reply(state: &State, result: Result<Client, Error>) -> HttpResponse {
    match result {
        Ok(client) => {
            let n = NewClient {
                client,
                secret: None,
                registration_token: None,
            };
            no_store_json(StatusCode::OK, &describe(state, &n))
        }
        Err(e) => oauth_error(&e, false),
    }
}

pub async fn read(req: HttpRequest, state: State, id: web::Path<String>) -> HttpResponse {
    let result = async { state.services.registered_client(&id, &bearer(&req)?).await }.await;
    registered_reply(&state, result)
}

pub async fn update(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let result = async {
        let token = bearer(&req)?;
        let v = body_json(&body)?;
        if v.get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|c| c != id.as_str())
        {
            return Err(Error::oauth(
                ErrorKind::InvalidInput,
                "invalid_client_metadata",
                "client_id does not match the URL",
            ));
        }
        let draft = draft_from(&v)?;
        state
            .services
            .update_registered_client(&id, &token, draft)
            .await
    }
    .await;
    registered_reply(&state, result)
}

pub async fn delete(req: HttpRequest, state: State, id: web::Path<String>) -> HttpResponse {
    let result = async {
        state
            .services
            .delete_registered_client(&id, &bearer(&req)?)
            .await
    }
    .await;
    match result {
        Ok(()) => HttpResponse::NoContent().finish(),
        Err(e) => oauth_error(&e, false),
    }
}

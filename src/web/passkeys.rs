//! The JSON side of WebAuthn, called by `static/webauthn.js`: each ceremony
//! is a `start` (options for `navigator.credentials`) and a `finish` (the
//! browser's answer). Bodies carry the page's CSRF token; errors come back
//! as `{"error": "<sentence for the user>"}`.

use super::State;
use super::login::open_browser_session;
use super::page::{CSRF_FAILED, client_info, csrf_ok, signed_in, status_for};
use crate::error::{Error, ErrorKind};
use crate::protocol::login::safe_return_path;
use crate::service::auth::SignedIn;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/webauthn/register/start", web::post().to(register_start))
        .route("/webauthn/register/finish", web::post().to(register_finish))
        .route("/webauthn/login/start", web::post().to(login_start))
        .route("/webauthn/login/finish", web::post().to(login_finish))
        .route(
            "/webauthn/second-factor/start",
            web::post().to(second_start),
        )
        .route(
            "/webauthn/second-factor/finish",
            web::post().to(second_finish),
        )
        .route("/webauthn/verify/start", web::post().to(verify_start))
        .route("/webauthn/verify/finish", web::post().to(verify_finish))
        .route("/invite/{token}/start", web::post().to(invite_start))
        .route("/invite/{token}/finish", web::post().to(invite_finish));
}

type JsonResult = Result<HttpResponse, JsonError>;

/// An error answered as `{"error": ...}`; internal failures are logged and
/// stay generic.
#[derive(Debug)]
pub(super) struct JsonError(Error);

impl std::fmt::Display for JsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.public())
    }
}

impl actix_web::ResponseError for JsonError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        status_for(self.0.kind)
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self.0.kind, ErrorKind::Internal) {
            tracing::error!(error = ?self.0, "webauthn request failed");
        }
        HttpResponse::build(self.status_code())
            .insert_header((CACHE_CONTROL, "no-store"))
            .json(json!({ "error": self.0.public() }))
    }
}

pub(super) fn json_error(e: &Error) -> JsonError {
    JsonError(e.clone())
}

fn ok_json(v: impl serde::Serialize) -> JsonResult {
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(v))
}

/// Parses the body and checks its CSRF token.
async fn body<T: DeserializeOwned + HasCsrf>(
    req: &HttpRequest,
    state: &State,
    bytes: &[u8],
) -> Result<T, JsonError> {
    let parsed: T = serde_json::from_slice(bytes).map_err(|e| {
        json_error(&Error::invalid(format!(
            "The request could not be read: {e}"
        )))
    })?;
    let ok = csrf_ok(req, state, parsed.csrf())
        .await
        .map_err(|_| json_error(&Error::unavailable("csrf check")))?;
    if !ok {
        return Err(json_error(&Error::forbidden(CSRF_FAILED)));
    }
    Ok(parsed)
}

trait HasCsrf {
    fn csrf(&self) -> &str;
}

macro_rules! has_csrf {
    ($($t:ty),*) => {$(impl HasCsrf for $t { fn csrf(&self) -> &str { &self.csrf } })*};
}

#[derive(Deserialize)]
struct Start {
    #[serde(default)]
    csrf: String,
    /// `passkey` (default) or `security_key`.
    #[serde(default)]
    kind: Option<String>,
    /// The pending second-factor token, for that ceremony.
    #[serde(default)]
    pending: String,
}

#[derive(Deserialize)]
struct Registered {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ceremony: String,
    #[serde(default)]
    name: String,
    credential: RegisterPublicKeyCredential,
}

#[derive(Deserialize)]
struct Asserted {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    ceremony: String,
    credential: PublicKeyCredential,
    #[serde(default)]
    next: Option<String>,
}

has_csrf!(Start, Registered, Asserted);

async fn signed_in_json(
    req: &HttpRequest,
    state: &State,
) -> Result<(crate::domain::Session, crate::domain::User), JsonError> {
    match signed_in(req, state).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(json_error(&Error::new(
            ErrorKind::Unauthenticated,
            "Your session has ended. Please sign in again.",
        ))),
        Err(e) => Err(json_error(&e.0)),
    }
}

/// Sets the session cookie and tells the script where to go.
async fn signed_in_reply(
    req: &HttpRequest,
    state: &State,
    s: SignedIn,
    next: &str,
    method: &str,
) -> JsonResult {
    state.metrics.signin(method, "success");
    let ip = client_info(req, state).ip;
    let (cookie, to) = open_browser_session(req, state, s, next, ip)
        .await
        .map_err(|_| json_error(&Error::unavailable("session start")))?;
    let mut res = HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(json!({ "redirect": to }));
    res.add_cookie(&cookie)
        .map_err(|e| json_error(&Error::internal(e.to_string())))?;
    Ok(res)
}

fn next_of(next: &Option<String>) -> String {
    safe_return_path(next.as_deref()).unwrap_or_default()
}

async fn register_start(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let f: Start = body(&req, &state, &b).await?;
    let (session, user) = signed_in_json(&req, &state).await?;
    let discoverable = f.kind.as_deref() != Some("security_key");
    let ip = client_info(&req, &state).ip;
    let c = state
        .services
        .start_passkey_registration(&session, &user, discoverable, ip.as_deref())
        .await
        .map_err(|e| json_error(&e))?;
    ok_json(c)
}

async fn register_finish(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let f: Registered = body(&req, &state, &b).await?;
    let (_, user) = signed_in_json(&req, &state).await?;
    let ip = client_info(&req, &state).ip;
    let p = state
        .services
        .finish_passkey_registration(&user, &f.ceremony, &f.name, &f.credential, ip)
        .await
        .map_err(|e| json_error(&e))?;
    ok_json(json!({ "id": p.id, "name": p.name, "redirect": "/account/security?added=1" }))
}

async fn login_start(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let _: Start = body(&req, &state, &b).await?;
    let c = state
        .services
        .start_passkey_signin(client_info(&req, &state).ip.as_deref())
        .await
        .map_err(|e| json_error(&e))?;
    ok_json(c)
}

async fn login_finish(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let f: Asserted = body(&req, &state, &b).await?;
    let client = client_info(&req, &state);
    match state
        .services
        .finish_passkey_signin(&f.ceremony, &f.credential, &client)
        .await
    {
        Ok(s) => signed_in_reply(&req, &state, s, &next_of(&f.next), "passkey").await,
        Err(e) => {
            state.metrics.signin("passkey", "bad_credentials");
            Err(json_error(&e))
        }
    }
}

async fn second_start(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let f: Start = body(&req, &state, &b).await?;
    let client = client_info(&req, &state);
    let c = state
        .services
        .start_passkey_second_factor(&f.pending, &client)
        .await
        .map_err(|e| json_error(&e))?;
    ok_json(c)
}

async fn second_finish(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let f: Asserted = body(&req, &state, &b).await?;
    let client = client_info(&req, &state);
    match state
        .services
        .finish_passkey_second_factor(&f.ceremony, &f.credential, &client)
        .await
    {
        Ok(s) => signed_in_reply(&req, &state, s, &next_of(&f.next), "hwk").await,
        Err(e) => {
            state.metrics.signin("hwk", "bad_credentials");
            Err(json_error(&e))
        }
    }
}

async fn verify_start(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let _: Start = body(&req, &state, &b).await?;
    let (session, user) = signed_in_json(&req, &state).await?;
    let c = state
        .services
        .start_passkey_check(&session, &user, client_info(&req, &state).ip.as_deref())
        .await
        .map_err(|e| json_error(&e))?;
    ok_json(c)
}

async fn verify_finish(req: HttpRequest, state: State, b: web::Bytes) -> JsonResult {
    let f: Asserted = body(&req, &state, &b).await?;
    let (session, user) = signed_in_json(&req, &state).await?;
    let client = client_info(&req, &state);
    state
        .services
        .finish_passkey_check(&session, &user, &f.ceremony, &f.credential, &client)
        .await
        .map_err(|e| json_error(&e))?;
    let to = safe_return_path(f.next.as_deref()).unwrap_or_else(|| "/account/security".into());
    ok_json(json!({ "redirect": to }))
}

async fn invite_start(
    req: HttpRequest,
    state: State,
    token: web::Path<String>,
    b: web::Bytes,
) -> JsonResult {
    let _: Start = body(&req, &state, &b).await?;
    let c = state
        .services
        .start_invite_enrollment(&token)
        .await
        .map_err(|e| json_error(&e))?;
    ok_json(c)
}

async fn invite_finish(
    req: HttpRequest,
    state: State,
    token: web::Path<String>,
    b: web::Bytes,
) -> JsonResult {
    let f: Registered = body(&req, &state, &b).await?;
    let client = client_info(&req, &state);
    let s = state
        .services
        .finish_invite_enrollment(&token, &f.ceremony, &f.name, &f.credential, &client)
        .await
        .map_err(|e| json_error(&e))?;
    signed_in_reply(&req, &state, s, "/account/security?welcome=1", "passkey").await
}

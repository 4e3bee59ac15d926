//! The PIM JSON API, for scripts and tools. A caller is the user of a
//! session cookie or of an access token with the scope the route needs:
//! `pim` for the user's own elevations (`/api/v1/me/*`), `pim:approve` for
//! the approval inbox and decisions, `pim:admin` for everyone's elevations
//! (an app holding `pim` cannot stand in for a second person). Cookie callers
//! must send `Content-Type: application/json`, which no cross-site form can
//! (and SameSite keeps the cookie off cross-site POSTs besides).

use super::State;
use super::page::{client_ip, session_token, status_for};
use crate::domain::{Session, User};
use crate::error::{Error, ErrorKind};
use crate::protocol::oidc::scope::{PIM_ADMIN, PIM_APPROVE, PIM_SELF};
use crate::service::pim::ElevationInput;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(16 * 1024)
            .error_handler(|e, _| {
                ApiError::from(Error::oauth(
                    ErrorKind::InvalidInput,
                    "invalid_request",
                    format!("the body is not the JSON expected: {e}"),
                ))
                .into()
            }),
    )
    .route("/api/v1/me/eligibilities", web::get().to(eligibilities))
    .route("/api/v1/me/elevations", web::get().to(my_elevations))
    .route("/api/v1/me/elevations", web::post().to(request))
    .route("/api/v1/me/elevations/{id}", web::get().to(one))
    .route("/api/v1/me/elevations/{id}/end", web::post().to(end))
    .route("/api/v1/elevations", web::get().to(all_open))
    .route("/api/v1/elevations/{id}/revoke", web::post().to(revoke))
    .route("/api/v1/approvals", web::get().to(approvals))
    .route("/api/v1/approvals/{id}", web::post().to(decide));
}

/// `{"error": code, "error_description": text}` with the matching status;
/// a 401 names the scope the route needs (RFC 6750 `WWW-Authenticate`).
#[derive(Debug)]
pub struct ApiError(Error, &'static str);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.public())
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e, PIM_SELF)
    }
}

impl actix_web::ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        status_for(self.0.kind)
    }

    fn error_response(&self) -> HttpResponse {
        if matches!(self.0.kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = ?self.0, "PIM API request failed");
        }
        let code = self.0.code().unwrap_or(match self.0.kind {
            ErrorKind::InvalidInput => "invalid_request",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Unauthenticated => "invalid_token",
            ErrorKind::Forbidden => "forbidden",
            _ => "server_error",
        });
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((CACHE_CONTROL, "no-store"));
        if self.0.kind == ErrorKind::Unauthenticated {
            res.insert_header(("WWW-Authenticate", format!("Bearer scope=\"{}\"", self.1)));
        }
        res.json(json!({"error": code, "error_description": self.0.public()}))
    }
}

type ApiResult = Result<HttpResponse, ApiError>;

fn ok(v: impl serde::Serialize) -> ApiResult {
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "no-store"))
        .json(v))
}

/// The calling user, the browser session behind the call while it lives
/// (its factor times decide the fresh-passkey condition), and when the
/// user signed in for it (the risk score's history ends there).
async fn caller(
    req: &HttpRequest,
    state: &State,
    scope: &'static str,
) -> Result<(User, Option<Session>, Option<DateTime<Utc>>), ApiError> {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if let Some(token) = auth.and_then(|a| {
        a.split_once(' ')
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_string())
    }) {
        let at = state
            .services
            .verify_access_token(&token)
            .await
            .map_err(|e| ApiError(e, scope))?;
        if !at.scope().iter().any(|s| s == scope) {
            return Err(Error::oauth(
                ErrorKind::Forbidden,
                "insufficient_scope",
                format!("this token lacks the {scope} scope"),
            )
            .into());
        }
        // Acting on others needs the sign-in the token came from alive.
        let for_others = scope != PIM_SELF;
        let (user, session) = state
            .services
            .token_user(&at, for_others)
            .await
            .map_err(|e| ApiError(e, scope))?;
        let signed_in = at.grant.auth_time.unwrap_or(at.grant.created_at);
        return Ok((user, session, Some(signed_in)));
    }
    if let Some(t) = session_token(req, state)
        && let Some((s, u)) = state.services.session_for(&t).await?
    {
        let json = req
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if req.method() == actix_web::http::Method::POST && !json {
            return Err(Error::oauth(
                ErrorKind::InvalidInput,
                "invalid_request",
                "send the body as application/json",
            )
            .into());
        }
        let signed_in = s.created_at;
        return Ok((u, Some(s), Some(signed_in)));
    }
    Err(ApiError(
        Error::oauth(
            ErrorKind::Unauthenticated,
            "invalid_token",
            format!("sign in, or send an access token with the {scope} scope"),
        ),
        scope,
    ))
}

async fn eligibilities(req: HttpRequest, state: State) -> ApiResult {
    let (user, ..) = caller(&req, &state, PIM_SELF).await?;
    ok(json!({"eligibilities": state.services.my_eligibilities(&user).await?}))
}

async fn my_elevations(req: HttpRequest, state: State) -> ApiResult {
    let (user, ..) = caller(&req, &state, PIM_SELF).await?;
    ok(json!({"elevations": state.services.my_requests(&user).await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    role: String,
    duration_seconds: i64,
    reason: String,
    ticket: Option<String>,
    start: Option<DateTime<Utc>>,
}

async fn request(req: HttpRequest, state: State, body: web::Json<RequestBody>) -> ApiResult {
    let (user, session, signed_in) = caller(&req, &state, PIM_SELF).await?;
    let b = body.into_inner();
    let input = ElevationInput {
        role: b.role,
        // Out of range counts as too long; the policy check says so.
        duration: chrono::Duration::try_seconds(b.duration_seconds)
            .unwrap_or(chrono::Duration::MAX),
        reason: b.reason,
        ticket: b.ticket,
        start: b.start,
    };
    let view = state
        .services
        .request_elevation(
            &user,
            session.as_ref(),
            signed_in,
            input,
            client_ip(&req, &state),
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((CACHE_CONTROL, "no-store"))
        .insert_header(("Location", format!("/api/v1/me/elevations/{}", view.id)))
        .json(view))
}

async fn one(req: HttpRequest, state: State, id: web::Path<String>) -> ApiResult {
    let (user, ..) = caller(&req, &state, PIM_SELF).await?;
    ok(state.services.my_request(&user, &id).await?)
}

async fn end(req: HttpRequest, state: State, id: web::Path<String>) -> ApiResult {
    let (user, ..) = caller(&req, &state, PIM_SELF).await?;
    ok(state
        .services
        .end_elevation(&user, &id, client_ip(&req, &state))
        .await?)
}

/// The caller, who must be a PIM administrator.
async fn admin(req: &HttpRequest, state: &State) -> Result<User, ApiError> {
    let (user, ..) = caller(req, state, PIM_ADMIN).await?;
    if !state.services.is_pim_admin(&user).await? {
        return Err(Error::oauth(
            ErrorKind::Forbidden,
            "not_an_administrator",
            "only members of the PIM administrators' group may do this",
        )
        .into());
    }
    Ok(user)
}

async fn all_open(req: HttpRequest, state: State) -> ApiResult {
    admin(&req, &state).await?;
    ok(json!({"elevations": state.services.open_elevations().await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    reason: String,
}

async fn revoke(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: web::Json<RevokeBody>,
) -> ApiResult {
    let user = admin(&req, &state).await?;
    let actor = crate::service::Actor::user(
        user.username.as_str(),
        client_ip(&req, &state).map(|i| i.to_string()),
    );
    ok(state
        .services
        .revoke_elevation(&actor, &id, &body.reason)
        .await?)
}

async fn approvals(req: HttpRequest, state: State) -> ApiResult {
    let (user, ..) = caller(&req, &state, PIM_APPROVE).await?;
    ok(json!({"approvals": state.services.approval_inbox(&user).await?}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    decision: String,
    #[serde(default)]
    comment: String,
}

async fn decide(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    body: web::Json<DecisionBody>,
) -> ApiResult {
    let (user, ..) = caller(&req, &state, PIM_APPROVE).await?;
    let approve = match body.decision.as_str() {
        "approve" => true,
        "deny" => false,
        other => {
            return Err(Error::oauth(
                ErrorKind::InvalidInput,
                "invalid_request",
                format!("decision must be approve or deny, not {other}"),
            )
            .into());
        }
    };
    ok(state
        .services
        .decide_elevation(&user, &id, approve, &body.comment, client_ip(&req, &state))
        .await?)
}

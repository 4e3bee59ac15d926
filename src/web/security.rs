//! The account's security page: TOTP and recovery codes.

use super::State;
use super::login::CsrfOnly;
use super::page::{
    CSRF_FAILED, CsrfForm, PageResult, client_info, csrf_ok, error_page, render, see_other,
    session_token, signed_in, status_for,
};
use crate::domain::{Session, User};
use crate::error::ErrorKind;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/account/security", web::get().to(show))
        .route("/account/security/totp", web::post().to(start_totp))
        .route(
            "/account/security/totp/confirm",
            web::post().to(confirm_totp),
        )
        .route("/account/security/totp/remove", web::post().to(remove_totp))
        .route("/account/security/recovery", web::post().to(regenerate))
        .route(
            "/account/security/passkeys/rename",
            web::post().to(rename_passkey),
        )
        .route(
            "/account/security/passkeys/remove",
            web::post().to(remove_passkey),
        )
        .route(
            "/account/security/sessions/end",
            web::post().to(end_session),
        );
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage<'a> {
    csrf: &'a str,
    totp: bool,
    recovery_left: usize,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    sessions: Vec<SessionRow>,
    passkeys: Vec<PasskeyRow>,
    has_password: bool,
}

struct PasskeyRow {
    id: String,
    name: String,
    kind: &'static str,
    created: String,
    last_used: String,
}

struct SessionRow {
    sid: String,
    current: bool,
    started: String,
    last_seen: String,
    from: String,
    device: String,
    methods: String,
}

#[derive(Template)]
#[template(path = "totp_enroll.html")]
struct EnrollPage<'a> {
    csrf: &'a str,
    qr: &'a str,
    secret: &'a str,
    error: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct CodesPage<'a> {
    codes: &'a [String],
}

/// The signed-in user, or the response that sends them to sign in.
async fn user(
    req: &HttpRequest,
    state: &State,
) -> Result<Result<User, HttpResponse>, super::page::PageError> {
    Ok(session_user(req, state).await?.map(|(_, u)| u))
}

/// The signed-in session and user, or the response that sends them to sign in.
async fn session_user(
    req: &HttpRequest,
    state: &State,
) -> Result<Result<(Session, User), HttpResponse>, super::page::PageError> {
    Ok(signed_in(req, state)
        .await?
        .ok_or_else(|| see_other("/login?next=/account/security")))
}

/// What the page says above everything else.
enum Banner<'a> {
    None,
    Notice(&'a str),
    Error(&'a str),
}

async fn page(req: &HttpRequest, state: &State, u: &User, banner: Banner<'_>) -> PageResult {
    let status = state.services.mfa_status(u).await?;
    let has_password = state.services.has_password(u).await?;
    let current = session_token(req, state)
        .map(|t| crate::service::Services::session_digest(&t))
        .unwrap_or_default();
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    let sessions = state
        .services
        .user_sessions(u, &current)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            sid: s.sid,
            current: s.current,
            started: fmt(s.started),
            last_seen: fmt(s.last_seen),
            from: s.ip.unwrap_or_else(|| "unknown".into()),
            device: s
                .user_agent
                .map(|a| a.chars().take(80).collect())
                .unwrap_or_else(|| "unknown".into()),
            methods: s.methods.join(", "),
        })
        .collect();
    let passkeys = state
        .services
        .passkeys(u)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            kind: match (p.discoverable, p.synced) {
                (true, true) => "Passkey (synced)",
                (true, false) => "Passkey",
                (false, _) => "Security key",
            },
            created: fmt(p.created_at),
            last_used: p.last_used_at.map(fmt).unwrap_or_else(|| "never".into()),
            id: p.id,
            name: p.name,
        })
        .collect();
    let (notice, error, code) = match banner {
        Banner::None => (None, None, StatusCode::OK),
        Banner::Notice(n) => (Some(n), None, StatusCode::OK),
        Banner::Error(e) => (None, Some(e), StatusCode::BAD_REQUEST),
    };
    let csrf = CsrfForm::issue(req, state).await?;
    let p = SecurityPage {
        csrf: &csrf.token,
        totp: status.totp,
        recovery_left: status.recovery_codes_left,
        notice,
        error,
        sessions,
        passkeys,
        has_password,
    };
    Ok(csrf.attach(render(code, &p)))
}

#[derive(Deserialize)]
pub struct ShowQuery {
    added: Option<String>,
    welcome: Option<String>,
}

pub async fn show(req: HttpRequest, state: State, q: web::Query<ShowQuery>) -> PageResult {
    let u = match user(&req, &state).await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let banner = if q.welcome.is_some() {
        Banner::Notice("Welcome! Your passkey is set up and you are signed in.")
    } else if q.added.is_some() {
        Banner::Notice("The passkey was added.")
    } else {
        Banner::None
    };
    page(&req, &state, &u, banner).await
}

/// Where a session too old to change sign-in methods goes: a fresh sign-in
/// (a passkey, or the password and second step) that comes back here.
const REAUTH: &str = "/login?reauth=1&next=%2Faccount%2Fsecurity";

/// Like [`checked`], for changes to how the user signs in: the session must
/// have proved who it is within `webauthn.fresh_within`, else the browser is
/// sent to sign in again.
async fn checked_fresh(
    req: &HttpRequest,
    state: &State,
    csrf: &str,
) -> Result<Result<User, HttpResponse>, super::page::PageError> {
    Ok(match checked_session(req, state, csrf).await? {
        Ok((s, u)) if state.services.require_recent_sign_in(&s).is_ok() => Ok(u),
        Ok(_) => Err(see_other(REAUTH)),
        Err(refused) => Err(refused),
    })
}

async fn checked(
    req: &HttpRequest,
    state: &State,
    csrf: &str,
) -> Result<Result<User, HttpResponse>, super::page::PageError> {
    Ok(checked_session(req, state, csrf).await?.map(|(_, u)| u))
}

/// The CSRF check, then the signed-in session and user.
async fn checked_session(
    req: &HttpRequest,
    state: &State,
    csrf: &str,
) -> Result<Result<(Session, User), HttpResponse>, super::page::PageError> {
    if !csrf_ok(req, state, csrf).await? {
        return Ok(Err(error_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            CSRF_FAILED,
        )));
    }
    session_user(req, state).await
}

async fn enroll_page(
    req: &HttpRequest,
    state: &State,
    u: &User,
    error: Option<&str>,
) -> PageResult {
    let e = state.services.start_totp_enrollment(u).await?;
    let csrf = CsrfForm::issue(req, state).await?;
    let qr = format!("data:image/png;base64,{}", e.qr_png_base64);
    let p = EnrollPage {
        csrf: &csrf.token,
        qr: &qr,
        secret: &e.secret_base32,
        error,
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(csrf.attach(render(status, &p)))
}

pub async fn start_totp(req: HttpRequest, state: State, form: web::Form<CsrfOnly>) -> PageResult {
    match checked_fresh(&req, &state, &form.csrf).await? {
        Ok(u) => enroll_page(&req, &state, &u, None).await,
        Err(r) => Ok(r),
    }
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub async fn confirm_totp(req: HttpRequest, state: State, form: web::Form<CodeForm>) -> PageResult {
    let u = match checked_fresh(&req, &state, &form.csrf).await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let ip = client_info(&req, &state).ip;
    match state.services.confirm_totp(&u, &form.code, ip).await {
        Ok(codes) if codes.is_empty() => {
            page(
                &req,
                &state,
                &u,
                Banner::Notice("Your authenticator app is set up."),
            )
            .await
        }
        Ok(codes) => Ok(render(StatusCode::OK, &CodesPage { codes: &codes })),
        Err(e) if e.kind == crate::error::ErrorKind::Unauthenticated => {
            enroll_page(&req, &state, &u, Some(e.public())).await
        }
        Err(e) => Ok(error_page(status_for(e.kind), "Set-up failed", e.public())),
    }
}

pub async fn remove_totp(req: HttpRequest, state: State, form: web::Form<CsrfOnly>) -> PageResult {
    let u = match checked_fresh(&req, &state, &form.csrf).await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    state
        .services
        .remove_totp(&u, client_info(&req, &state).ip)
        .await?;
    page(
        &req,
        &state,
        &u,
        Banner::Notice("The authenticator app and your recovery codes were removed."),
    )
    .await
}

pub async fn regenerate(req: HttpRequest, state: State, form: web::Form<CsrfOnly>) -> PageResult {
    let u = match checked_fresh(&req, &state, &form.csrf).await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let codes = state
        .services
        .regenerate_recovery_codes(&u, client_info(&req, &state).ip)
        .await?;
    Ok(render(StatusCode::OK, &CodesPage { codes: &codes }))
}

#[derive(Deserialize)]
pub struct EndForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    sid: String,
}

pub async fn end_session(req: HttpRequest, state: State, form: web::Form<EndForm>) -> PageResult {
    let u = match checked(&req, &state, &form.csrf).await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let found = state
        .services
        .end_user_session(&u, &form.sid, client_info(&req, &state).ip)
        .await?;
    if signed_in(&req, &state).await?.is_none() {
        // That was this browser's own session.
        return Ok(see_other("/login?signed_out=1"));
    }
    let notice = if found {
        "The session has ended."
    } else {
        "That session had already ended."
    };
    page(&req, &state, &u, Banner::Notice(notice)).await
}

#[derive(Deserialize)]
pub struct PasskeyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: String,
}

pub async fn rename_passkey(
    req: HttpRequest,
    state: State,
    form: web::Form<PasskeyForm>,
) -> PageResult {
    let u = match checked(&req, &state, &form.csrf).await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let ip = client_info(&req, &state).ip;
    let done = state
        .services
        .rename_passkey(&u, &form.id, &form.name, ip)
        .await;
    after_change(&req, &state, &u, done, "The passkey was renamed.").await
}

pub async fn remove_passkey(
    req: HttpRequest,
    state: State,
    form: web::Form<PasskeyForm>,
) -> PageResult {
    let u = match checked_fresh(&req, &state, &form.csrf).await? {
        Ok(u) => u,
        Err(r) => return Ok(r),
    };
    let ip = client_info(&req, &state).ip;
    let done = state.services.remove_passkey(&u, &form.id, ip).await;
    after_change(&req, &state, &u, done, "The passkey was removed.").await
}

/// The security page again, saying what happened; a refusal (bad name, the
/// last way in) is shown on the page, a failure of ours is an error page.
async fn after_change(
    req: &HttpRequest,
    state: &State,
    u: &User,
    done: crate::error::Result<()>,
    notice: &str,
) -> PageResult {
    match done {
        Ok(()) => page(req, state, u, Banner::Notice(notice)).await,
        Err(e) if e.kind != ErrorKind::Internal && e.kind != ErrorKind::Unavailable => {
            page(req, state, u, Banner::Error(e.public())).await
        }
        Err(e) => Err(e.into()),
    }
}

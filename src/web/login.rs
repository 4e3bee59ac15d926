//! The sign-in page, sign-in and sign-out.

use super::State;
use super::page::{
    CSRF_FAILED, CsrfForm, PageResult, allow_return, client_info, cookie, csrf_ok, removal_cookie,
    render, see_other, session_token, status_for,
};
use crate::protocol::login::safe_return_path;
use crate::service::auth::{PasswordOk, SignedIn};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    signed_out: Option<String>,
    /// Prefills the username (OIDC `login_hint`).
    login_hint: Option<String>,
    /// Show the form even to a signed-in user: the application asked for a
    /// fresh sign-in (`prompt=login`, `max_age`).
    reauth: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

/// Where to go after signing in.
fn target(next: Option<&str>) -> String {
    safe_return_path(next).unwrap_or_else(|| "/account".into())
}

pub async fn root(req: HttpRequest, state: State) -> PageResult {
    let signed_in = match session_token(&req, &state) {
        Some(t) => state.services.session_for(&t).await?.is_some(),
        None => false,
    };
    Ok(see_other(if signed_in { "/account" } else { "/login" }))
}

struct LoginView<'a> {
    status: StatusCode,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
    notice: Option<&'a str>,
}

async fn login_page(req: &HttpRequest, state: &State, v: LoginView<'_>) -> PageResult {
    let csrf = CsrfForm::issue(req, state).await?;
    let page = LoginPage {
        csrf: &csrf.token,
        next: v.next,
        // Refilled for convenience, never longer than a username can be.
        username: v
            .username
            .get(..v.username.floor_char_boundary(64))
            .unwrap_or(""),
        error: v.error,
        notice: v.notice,
    };
    Ok(allow_return(state, v.next, csrf.attach(render(v.status, &page))).await)
}

pub async fn show(req: HttpRequest, state: State, q: web::Query<LoginQuery>) -> PageResult {
    let next = safe_return_path(q.next.as_deref()).unwrap_or_default();
    let reauth = q.reauth.is_some();
    let mut username = q.login_hint.clone().unwrap_or_default();
    if let Some(t) = session_token(&req, &state)
        && let Some((_, user)) = state.services.session_for(&t).await?
    {
        if !reauth {
            return Ok(see_other(&target(Some(&next))));
        }
        username = user.username.to_string();
    }
    let notice = if reauth {
        Some("The application asks you to sign in again.")
    } else {
        q.signed_out.is_some().then_some("You have signed out.")
    };
    let view = LoginView {
        status: StatusCode::OK,
        next: &next,
        username: &username,
        error: None,
        notice,
    };
    login_page(&req, &state, view).await
}

pub async fn submit(req: HttpRequest, state: State, form: web::Form<LoginForm>) -> PageResult {
    let form = form.into_inner();
    let next = safe_return_path(form.next.as_deref()).unwrap_or_default();
    let mut view = LoginView {
        status: StatusCode::FORBIDDEN,
        next: &next,
        username: &form.username,
        error: Some(CSRF_FAILED),
        notice: None,
    };
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return login_page(&req, &state, view).await;
    }
    let client = client_info(&req, &state);
    match state
        .services
        .login_password(&form.username, &form.password, &client)
        .await
    {
        Ok(PasswordOk::Session(signed_in)) => {
            state.metrics.signin("pwd", "success");
            start_session(&req, &state, signed_in, &next, client.ip.clone()).await
        }
        Ok(PasswordOk::NeedsSecondFactor { pending, factors }) => {
            let step = SecondStep {
                pending: &pending,
                next: &next,
                factors,
            };
            second_step_page(&req, &state, step, StatusCode::OK, None).await
        }
        Err(failure) => {
            state.metrics.signin("pwd", failure.outcome.as_str());
            view.status = status_for(failure.error.kind);
            view.error = Some(failure.error.public());
            login_page(&req, &state, view).await
        }
    }
}

/// Sets the session cookie, ending whatever session the browser had.
async fn start_session(
    req: &HttpRequest,
    state: &State,
    signed_in: SignedIn,
    next: &str,
    ip: Option<String>,
) -> PageResult {
    let (cookie, to) = open_browser_session(req, state, signed_in, next, ip).await?;
    let mut res = see_other(&to);
    res.add_cookie(&cookie)
        .map_err(|e| crate::error::Error::internal(e.to_string()))?;
    Ok(res)
}

/// The session cookie for a new sign-in and where the browser goes next.
/// Whatever session this browser had ends here, so a session ID planted
/// before sign-in is worth nothing after it.
pub(super) async fn open_browser_session(
    req: &HttpRequest,
    state: &State,
    signed_in: SignedIn,
    next: &str,
    ip: Option<String>,
) -> Result<(actix_web::cookie::Cookie<'static>, String), crate::web::page::PageError> {
    if let Some(old) = session_token(req, state) {
        state.services.logout(&old, ip).await?;
    }
    let to = if signed_in.must_change_password {
        "/account/password".to_string()
    } else {
        target(Some(next))
    };
    let name = state.services.settings.session.cookie_name.clone();
    Ok((cookie(state, &name, signed_in.token).into_owned(), to))
}

#[derive(Template)]
#[template(path = "mfa.html")]
struct SecondFactorPage<'a> {
    csrf: &'a str,
    pending: &'a str,
    next: &'a str,
    error: Option<&'a str>,
    /// Which second factors to offer.
    totp: bool,
    passkey: bool,
}

#[derive(Deserialize)]
pub struct SecondFactorForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    pending: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

/// A pending sign-in and the second factors it can use.
struct SecondStep<'a> {
    pending: &'a str,
    next: &'a str,
    factors: crate::service::mfa::MfaStatus,
}

async fn pending_step<'a>(
    state: &State,
    pending: &'a str,
    next: &'a str,
) -> Result<SecondStep<'a>, crate::web::page::PageError> {
    let factors = state.services.pending_factors(pending).await?;
    Ok(SecondStep {
        pending,
        next,
        factors,
    })
}

/// The second-step page, offering the factors the user has.
async fn second_step_page(
    req: &HttpRequest,
    state: &State,
    step: SecondStep<'_>,
    status: StatusCode,
    error: Option<&str>,
) -> PageResult {
    let csrf = CsrfForm::issue(req, state).await?;
    let page = SecondFactorPage {
        csrf: &csrf.token,
        pending: step.pending,
        next: step.next,
        error,
        totp: step.factors.totp,
        passkey: step.factors.passkeys > 0,
    };
    Ok(allow_return(state, step.next, csrf.attach(render(status, &page))).await)
}

/// The second step of sign-in: a TOTP or recovery code.
pub async fn second_factor(
    req: HttpRequest,
    state: State,
    form: web::Form<SecondFactorForm>,
) -> PageResult {
    let form = form.into_inner();
    let next = safe_return_path(form.next.as_deref()).unwrap_or_default();
    if !csrf_ok(&req, &state, &form.csrf).await? {
        let step = pending_step(&state, &form.pending, &next).await?;
        return second_step_page(&req, &state, step, StatusCode::FORBIDDEN, Some(CSRF_FAILED))
            .await;
    }
    let client = client_info(&req, &state);
    match state
        .services
        .complete_second_factor(&form.pending, &form.code, &client)
        .await
    {
        Ok(signed_in) => {
            state.metrics.signin("otp", "success");
            start_session(&req, &state, signed_in, &next, client.ip.clone()).await
        }
        Err(e) if e.kind == crate::error::ErrorKind::Unauthenticated => {
            state.metrics.signin("otp", "bad_credentials");
            let step = pending_step(&state, &form.pending, &next).await?;
            second_step_page(
                &req,
                &state,
                step,
                StatusCode::UNAUTHORIZED,
                Some(e.public()),
            )
            .await
        }
        Err(e)
            if e.kind == crate::error::ErrorKind::Internal
                || e.kind == crate::error::ErrorKind::Unavailable =>
        {
            Err(e.into())
        }
        Err(e) => {
            // Expired or locked: back to the start.
            state.metrics.signin("otp", "throttled");
            let view = LoginView {
                status: status_for(e.kind),
                next: &next,
                username: "",
                error: Some(e.public()),
                notice: None,
            };
            login_page(&req, &state, view).await
        }
    }
}

pub async fn logout(req: HttpRequest, state: State, form: web::Form<CsrfOnly>) -> PageResult {
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return Err(crate::error::Error::forbidden(CSRF_FAILED).into());
    }
    // SAML service providers of this session are told one after the other
    // (front channel) before the browser lands on the sign-in page.
    let chain = super::saml::sign_out_everywhere(&req, &state, "/login?signed_out=1").await?;
    let name = state.services.settings.session.cookie_name.clone();
    let mut res: HttpResponse = match &chain {
        Some(o) => super::saml::send(o),
        None => see_other("/login?signed_out=1"),
    };
    let _ = res.add_cookie(&removal_cookie(&state, &name));
    Ok(res)
}

//! The signed-in user's own pages.

use super::State;
use super::page::{
    CSRF_FAILED, CsrfForm, PageResult, client_info, csrf_ok, render, see_other, signed_in,
    signed_in_for_password_change, status_for,
};
use crate::domain::User;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, web};
use askama::Template;
use serde::Deserialize;

fn to_login(path: &str) -> actix_web::HttpResponse {
    see_other(&format!("/login?next={}", urlencode(path)))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage<'a> {
    csrf: &'a str,
    user: &'a User,
    groups: Vec<String>,
    roles: Vec<String>,
    signed_in_at: String,
    methods: String,
    ip: &'a str,
    /// SAML applications to open by IdP-initiated SSO: (name, link).
    apps: Vec<(String, String)>,
}

pub async fn show(req: HttpRequest, state: State) -> PageResult {
    let Some((session, user)) = signed_in(&req, &state).await? else {
        return Ok(to_login("/account"));
    };
    if state.services.must_change_password(&user).await? {
        return Ok(see_other("/account/password"));
    }
    let details = state.services.user_details(user.username.as_str()).await?;
    let csrf = CsrfForm::issue(&req, &state).await?;
    let page = AccountPage {
        csrf: &csrf.token,
        user: &user,
        groups: details.groups.iter().map(ToString::to_string).collect(),
        roles: details.roles.iter().map(ToString::to_string).collect(),
        signed_in_at: session.auth_time.format("%Y-%m-%d %H:%M UTC").to_string(),
        methods: session.amr.join(", "),
        ip: session.ip.as_deref().unwrap_or("unknown"),
        apps: state
            .services
            .list_sps()
            .await?
            .into_iter()
            .map(|sp| {
                let link = crate::protocol::oidc::uri::with_query(
                    "http://x/saml/sso/init",
                    &[("sp", &sp.entity_id)],
                );
                (sp.name, link.trim_start_matches("http://x").to_string())
            })
            .collect(),
    };
    Ok(csrf.attach(render(StatusCode::OK, &page)))
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage<'a> {
    csrf: &'a str,
    username: &'a str,
    forced: bool,
    error: Option<&'a str>,
    min_length: usize,
    /// A second factor shown moments ago stands in for the current password.
    fresh: bool,
    has_password: bool,
    has_passkey: bool,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

async fn password_page(
    req: &HttpRequest,
    state: &State,
    user: &User,
    status: StatusCode,
    error: Option<&str>,
) -> PageResult {
    let forced = state.services.must_change_password(user).await?;
    let fresh = match signed_in_for_password_change(req, state).await? {
        Some((session, _)) => state.services.has_fresh_factor(&session),
        None => false,
    };
    let has_password = state.services.has_password(user).await?;
    let has_passkey = state.services.mfa_status(user).await?.passkeys > 0;
    let csrf = CsrfForm::issue(req, state).await?;
    let page = PasswordPage {
        csrf: &csrf.token,
        username: user.username.as_str(),
        forced,
        error,
        min_length: state.services.settings.login.password_min_length,
        fresh,
        has_password,
        has_passkey,
    };
    Ok(csrf.attach(render(status, &page)))
}

pub async fn password_form(req: HttpRequest, state: State) -> PageResult {
    let Some((_, user)) = signed_in_for_password_change(&req, &state).await? else {
        return Ok(to_login("/account/password"));
    };
    password_page(&req, &state, &user, StatusCode::OK, None).await
}

pub async fn change_password(
    req: HttpRequest,
    state: State,
    form: web::Form<PasswordForm>,
) -> PageResult {
    let Some((session, user)) = signed_in_for_password_change(&req, &state).await? else {
        return Ok(to_login("/account/password"));
    };
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return password_page(
            &req,
            &state,
            &user,
            StatusCode::FORBIDDEN,
            Some(CSRF_FAILED),
        )
        .await;
    }
    if form.new != form.confirm {
        let msg = "The new password and its confirmation differ.";
        return password_page(&req, &state, &user, StatusCode::BAD_REQUEST, Some(msg)).await;
    }
    let ip = client_info(&req, &state).ip;
    match state
        .services
        .change_password(&session, &user, &form.current, &form.new, ip)
        .await
    {
        Ok(()) => Ok(see_other("/account")),
        Err(e) if e.kind != crate::error::ErrorKind::Internal => {
            password_page(&req, &state, &user, status_for(e.kind), Some(e.public())).await
        }
        Err(e) => Err(e.into()),
    }
}

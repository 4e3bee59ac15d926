//! `/end-session`: RP-initiated logout.

use crate::crypto::random_token;
use crate::service::oidc::logout::{EndSessionRequest, LogoutPlan};
use crate::web::State;
use crate::web::page::{
    CSRF_FAILED, CsrfForm, PageResult, csrf_ok, error_page, removal_cookie, render, see_other,
    signed_in_for_password_change,
};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use std::collections::HashMap;
use std::time::Duration;

#[derive(Template)]
#[template(path = "logout.html")]
struct ConfirmPage<'a> {
    csrf: &'a str,
    id: &'a str,
    client_name: Option<&'a str>,
    username: &'a str,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
struct SignedOutPage;

fn request_from(map: &mut HashMap<String, String>) -> EndSessionRequest {
    let mut take = |k: &str| map.remove(k).filter(|v| !v.is_empty());
    EndSessionRequest {
        id_token_hint: take("id_token_hint"),
        client_id: take("client_id"),
        post_logout_redirect_uri: take("post_logout_redirect_uri"),
        state: take("state"),
    }
}

pub async fn end_session_get(req: HttpRequest, state: State) -> PageResult {
    let mut map: HashMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    end_session(&req, &state, request_from(&mut map)).await
}

pub async fn end_session_post(req: HttpRequest, state: State, body: web::Bytes) -> PageResult {
    let mut map: HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    end_session(&req, &state, request_from(&mut map)).await
}

fn done(plan_redirect: Option<&str>) -> HttpResponse {
    match plan_redirect {
        Some(to) => see_other(to),
        None => render(StatusCode::OK, &SignedOutPage),
    }
}

async fn sign_out(req: &HttpRequest, state: &State, redirect: Option<&str>) -> PageResult {
    // SAML service providers of the session are told first (front channel);
    // the chain ends where this request would have ended.
    let chain = crate::web::saml::sign_out_everywhere(
        req,
        state,
        redirect.unwrap_or("/login?signed_out=1"),
    )
    .await?;
    let name = state.services.settings.session.cookie_name.clone();
    let mut res = match &chain {
        Some(o) => crate::web::saml::send(o),
        None => done(redirect),
    };
    let _ = res.add_cookie(&removal_cookie(state, &name));
    Ok(res)
}

async fn end_session(req: &HttpRequest, state: &State, r: EndSessionRequest) -> PageResult {
    let plan: LogoutPlan = match state.services.plan_logout(&r).await {
        Ok(p) => p,
        Err(e) => {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "Sign-out request refused",
                e.public(),
            ));
        }
    };
    // Signing out is open to every session, one-time password or not.
    let Some((_, user)) = signed_in_for_password_change(req, state).await? else {
        return Ok(done(plan.redirect.as_deref()));
    };
    // A valid ID token for this very user shows the request came from an
    // application they used: sign out at once. Otherwise ask, so that a link
    // on another site cannot sign anyone out.
    if plan.hinted_subject.as_deref() == Some(user.id.as_str()) {
        return sign_out(req, state, plan.redirect.as_deref()).await;
    }
    let id = random_token();
    let after = plan.redirect.clone().unwrap_or_default();
    state
        .services
        .ephemeral
        .begin(
            &format!("logout:{id}"),
            after.as_bytes(),
            Duration::from_secs(600),
        )
        .await?;
    let csrf = CsrfForm::issue(req, state).await?;
    let page = ConfirmPage {
        csrf: &csrf.token,
        id: &id,
        client_name: plan.client_name.as_deref(),
        username: user.username.as_str(),
    };
    Ok(csrf.attach(render(StatusCode::OK, &page)))
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    csrf: String,
    id: String,
}

pub async fn confirm(req: HttpRequest, state: State, form: web::Form<ConfirmForm>) -> PageResult {
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return Ok(error_page(StatusCode::FORBIDDEN, "Forbidden", CSRF_FAILED));
    }
    let after = state
        .services
        .ephemeral
        .take(&format!("logout:{}", form.id))
        .await?;
    let redirect = after
        .map(|b| String::from_utf8_lossy(&b).to_string())
        .filter(|s| !s.is_empty());
    sign_out(&req, &state, redirect.as_deref()).await
}

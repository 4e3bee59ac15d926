//! `/authorize`: the browser side of the authorization code flow.

use super::page_status;
use crate::protocol::oidc::authorize::{AuthorizeParams, ResponseMode};
use crate::protocol::oidc::scope::describe;
use crate::protocol::oidc::uri::with_query;
use crate::service::oidc::authorize::{AuthorizeOutcome, ClientResponse};
use crate::web::State;
use crate::web::page::{
    Browser, CSRF_FAILED, CsrfForm, PageResult, allow_return, auto_post, browser_binding,
    client_ip, csrf_ok, error_page, render, see_other, signed_in, to_sign_in,
};
use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

fn pairs(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect()
}

pub async fn get(req: HttpRequest, state: State) -> PageResult {
    start(&req, &state, pairs(req.query_string())).await
}

pub async fn post(req: HttpRequest, state: State, body: web::Bytes) -> PageResult {
    let raw = std::str::from_utf8(&body).unwrap_or("");
    start(&req, &state, pairs(raw)).await
}

async fn start(req: &HttpRequest, state: &State, pairs: Vec<(String, String)>) -> PageResult {
    let session = signed_in(req, state).await?;
    // The transaction belongs to this browser from the start.
    let browser = Browser::of(req, state);
    let outcome = state
        .services
        .authorize(
            AuthorizeParams::from_pairs(pairs),
            session,
            &browser.binding,
            client_ip(req, state),
        )
        .await?;
    Ok(browser.attach(respond(state, &browser, outcome).await?))
}

#[derive(Deserialize)]
pub struct Resume {
    tx: String,
}

pub async fn resume(req: HttpRequest, state: State, q: web::Query<Resume>) -> PageResult {
    let session = signed_in(&req, &state).await?;
    let outcome = state
        .services
        .continue_authorize(
            &q.tx,
            session,
            &browser_binding(&req, &state),
            client_ip(&req, &state),
        )
        .await?;
    respond(&state, &Browser::of(&req, &state), outcome).await
}

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    tx: String,
    decision: String,
}

pub async fn consent(req: HttpRequest, state: State, form: web::Form<ConsentForm>) -> PageResult {
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return Ok(error_page(StatusCode::FORBIDDEN, "Forbidden", CSRF_FAILED));
    }
    let session = signed_in(&req, &state).await?;
    let approve = form.decision == "allow";
    let outcome = state
        .services
        .answer_consent(
            &form.tx,
            session,
            &browser_binding(&req, &state),
            approve,
            client_ip(&req, &state),
        )
        .await?;
    respond(&state, &Browser::of(&req, &state), outcome).await
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    csrf: &'a str,
    tx: &'a str,
    client_name: &'a str,
    scopes: Vec<(&'a str, &'static str)>,
    destination: &'a str,
    self_registered: bool,
}

async fn respond(state: &State, browser: &Browser, outcome: AuthorizeOutcome) -> PageResult {
    Ok(match outcome {
        AuthorizeOutcome::Page(e) => error_page(
            page_status(&e),
            "This sign-in request cannot be completed",
            e.public(),
        ),
        AuthorizeOutcome::Login {
            resume,
            login_hint,
            reauth,
        } => to_sign_in(&resume, login_hint.as_deref(), reauth),
        AuthorizeOutcome::Consent {
            tx,
            client_name,
            scopes,
            destination,
            self_registered,
        } => {
            let csrf = CsrfForm::for_browser(state, browser).await?;
            let page = ConsentPage {
                csrf: &csrf.token,
                tx: &tx,
                client_name: &client_name,
                scopes: scopes.iter().map(|s| (s.as_str(), describe(s))).collect(),
                destination: &destination,
                self_registered,
            };
            let res = csrf.attach(render(StatusCode::OK, &page));
            allow_return(state, &format!("/authorize/resume?tx={tx}"), res).await
        }
        AuthorizeOutcome::Respond(r) => client_response(&r),
        AuthorizeOutcome::NeedsElevation {
            role,
            app,
            resume,
            gate,
        } => crate::web::pim::needs_elevation(&role, &app, &resume, gate),
    })
}

/// Sends the browser to the client: a 303 with the parameters in the query,
/// or an auto-submitting form.
pub fn client_response(r: &ClientResponse) -> HttpResponse {
    match r.mode {
        ResponseMode::Query => {
            let params: Vec<(&str, &str)> = r
                .params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            see_other(&with_query(&r.redirect_uri, &params))
        }
        ResponseMode::FormPost => {
            let mut res = auto_post(&r.redirect_uri, &r.params);
            if let Ok(v) = "no-store".parse() {
                res.headers_mut().insert(CACHE_CONTROL, v);
            }
            res
        }
    }
}

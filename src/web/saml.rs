//! SAML endpoints: metadata, SSO (both bindings), IdP-initiated SSO.

use super::State;
use super::page::{PageResult, error_page, render, see_other, signed_in};
use crate::domain::Binding;
use crate::protocol::oidc::uri::with_query;
use crate::service::saml::sso::{SamlPost, SamlRequestIn, SsoOutcome};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/saml/metadata", web::get().to(metadata))
        .route("/saml/sso", web::get().to(sso_redirect))
        .route("/saml/sso", web::post().to(sso_post))
        .route("/saml/resume", web::get().to(resume))
        .route("/saml/sso/init", web::get().to(idp_init));
}

async fn metadata(state: State) -> PageResult {
    let xml = state.services.saml_metadata().await?;
    Ok(HttpResponse::Ok()
        .insert_header((CACHE_CONTROL, "public, max-age=3600"))
        .content_type("application/samlmetadata+xml")
        .body(xml))
}

#[derive(Deserialize)]
struct SsoParams {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

fn missing() -> HttpResponse {
    error_page(
        StatusCode::BAD_REQUEST,
        "Not a SAML request",
        "The request carries no SAMLRequest.",
    )
}

async fn sso_redirect(req: HttpRequest, state: State) -> PageResult {
    let p: SsoParams = match web::Query::<SsoParams>::from_query(req.query_string()) {
        Ok(q) => q.into_inner(),
        Err(_) => return Ok(missing()),
    };
    let Some(saml_request) = p.saml_request else {
        return Ok(missing());
    };
    let input = SamlRequestIn {
        binding: Binding::Redirect,
        saml_request,
        relay_state: p.relay_state,
        raw_query: Some(req.query_string().to_string()),
    };
    let session = signed_in(&req, &state).await?;
    let outcome = state.services.saml_sso(input, session).await?;
    respond(outcome)
}

async fn sso_post(req: HttpRequest, state: State, form: web::Form<SsoParams>) -> PageResult {
    let p = form.into_inner();
    let Some(saml_request) = p.saml_request else {
        return Ok(missing());
    };
    let input = SamlRequestIn {
        binding: Binding::Post,
        saml_request,
        relay_state: p.relay_state,
        raw_query: None,
    };
    let session = signed_in(&req, &state).await?;
    let outcome = state.services.saml_sso(input, session).await?;
    respond(outcome)
}

#[derive(Deserialize)]
struct Resume {
    tx: String,
}

async fn resume(req: HttpRequest, state: State, q: web::Query<Resume>) -> PageResult {
    let session = signed_in(&req, &state).await?;
    let outcome = state.services.saml_continue(&q.tx, session).await?;
    respond(outcome)
}

#[derive(Deserialize)]
struct Init {
    sp: String,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn idp_init(req: HttpRequest, state: State, q: web::Query<Init>) -> PageResult {
    let session = signed_in(&req, &state).await?;
    let q = q.into_inner();
    let outcome = state
        .services
        .saml_idp_init(&q.sp, q.relay_state, session)
        .await?;
    respond(outcome)
}

#[derive(Template)]
#[template(path = "saml_post.html")]
struct PostPage<'a> {
    action: &'a str,
    saml_response: &'a str,
    relay_state: Option<&'a str>,
}

fn respond(outcome: SsoOutcome) -> PageResult {
    Ok(match outcome {
        SsoOutcome::Page(e) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request cannot be completed",
            e.public(),
        ),
        SsoOutcome::Resume(to) => see_other(&to),
        SsoOutcome::Login { resume, reauth } => {
            let mut params = vec![("next", resume.as_str())];
            if reauth {
                params.push(("reauth", "1"));
            }
            let to = with_query("http://x/login", &params);
            see_other(to.trim_start_matches("http://x"))
        }
        SsoOutcome::Post(p) => post_page(&p),
    })
}

/// The auto-submitting form that carries a Response to the ACS; without
/// JavaScript it shows a Continue button.
pub fn post_page(p: &SamlPost) -> HttpResponse {
    let page = PostPage {
        action: &p.acs_url,
        saml_response: &p.saml_response,
        relay_state: p.relay_state.as_deref(),
    };
    let mut res = render(StatusCode::OK, &page);
    let origin = url::Url::parse(&p.acs_url)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".into());
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = csp.parse() {
        res.headers_mut().insert(CONTENT_SECURITY_POLICY, v);
    }
    res
}

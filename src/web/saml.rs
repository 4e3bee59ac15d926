//! SAML endpoints: metadata, SSO (both bindings), IdP-initiated SSO.

use super::State;
use super::page::{
    Browser, PageResult, auto_post, browser_binding, client_ip, error_page, see_other, signed_in,
    to_sign_in,
};
use crate::domain::Binding;
use crate::service::saml::slo::{Outgoing, SloIn, SloOutcome};
use crate::service::saml::sso::{SamlPost, SamlRequestIn, SsoOutcome};
use actix_web::http::StatusCode;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/saml/metadata", web::get().to(metadata))
        .route("/saml/sso", web::get().to(sso_redirect))
        .route("/saml/sso", web::post().to(sso_post))
        .route("/saml/resume", web::get().to(resume))
        .route("/saml/sso/init", web::get().to(idp_init))
        .route("/saml/slo", web::get().to(slo_redirect))
        .route("/saml/slo", web::post().to(slo_post));
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
    let browser = Browser::of(&req, &state);
    let outcome = state
        .services
        .saml_sso(input, session, &browser.binding, client_ip(&req, &state))
        .await?;
    Ok(browser.attach(respond(outcome)?))
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
    let browser = Browser::of(&req, &state);
    let outcome = state
        .services
        .saml_sso(input, session, &browser.binding, client_ip(&req, &state))
        .await?;
    Ok(browser.attach(respond(outcome)?))
}

#[derive(Deserialize)]
struct Resume {
    tx: String,
}

async fn resume(req: HttpRequest, state: State, q: web::Query<Resume>) -> PageResult {
    let session = signed_in(&req, &state).await?;
    let outcome = state
        .services
        .saml_continue(
            &q.tx,
            session,
            &browser_binding(&req, &state),
            client_ip(&req, &state),
        )
        .await?;
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
    let browser = Browser::of(&req, &state);
    let outcome = state
        .services
        .saml_idp_init(
            &q.sp,
            q.relay_state,
            session,
            &browser.binding,
            client_ip(&req, &state),
        )
        .await?;
    Ok(browser.attach(respond(outcome)?))
}

fn respond(outcome: SsoOutcome) -> PageResult {
    Ok(match outcome {
        SsoOutcome::Page(e) => error_page(
            StatusCode::BAD_REQUEST,
            "This sign-in request cannot be completed",
            e.public(),
        ),
        SsoOutcome::Resume(to) => see_other(&to),
        SsoOutcome::Login { resume, reauth } => to_sign_in(&resume, None, reauth),
        SsoOutcome::Post(p) => post_page(&p),
        SsoOutcome::NeedsElevation {
            role,
            app,
            resume,
            gate,
        } => crate::web::pim::needs_elevation(&role, &app, &resume, gate),
    })
}

#[derive(Deserialize)]
struct SloParams {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

async fn slo(
    state: &State,
    p: SloParams,
    binding: Binding,
    raw_query: Option<String>,
) -> PageResult {
    if p.saml_request.is_some() == p.saml_response.is_some() {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "Not a SAML logout message",
            "Send exactly one SAMLRequest or SAMLResponse.",
        ));
    }
    let input = SloIn {
        binding,
        request: p.saml_request,
        response: p.saml_response,
        relay_state: p.relay_state,
        raw_query,
    };
    Ok(match state.services.saml_slo(input).await? {
        SloOutcome::Page(e) => error_page(
            StatusCode::BAD_REQUEST,
            "This logout request cannot be completed",
            e.public(),
        ),
        SloOutcome::Done(to) => see_other(&to),
        SloOutcome::Send(o) => send(&o),
    })
}

async fn slo_redirect(req: HttpRequest, state: State) -> PageResult {
    match web::Query::<SloParams>::from_query(req.query_string()) {
        Ok(q) => {
            slo(
                &state,
                q.into_inner(),
                Binding::Redirect,
                Some(req.query_string().to_string()),
            )
            .await
        }
        Err(_) => Ok(missing()),
    }
}

async fn slo_post(state: State, form: web::Form<SloParams>) -> PageResult {
    slo(&state, form.into_inner(), Binding::Post, None).await
}

/// Delivers a logout message to an SP by its binding.
pub fn send(o: &Outgoing) -> HttpResponse {
    match o {
        Outgoing::Redirect(url) => see_other(url),
        Outgoing::Post {
            url,
            field,
            value,
            relay_state,
        } => form_page(url, field, value, relay_state.as_deref()),
    }
}

/// The Response on its way to the ACS.
pub fn post_page(p: &SamlPost) -> HttpResponse {
    form_page(
        &p.acs_url,
        "SAMLResponse",
        &p.saml_response,
        p.relay_state.as_deref(),
    )
}

fn form_page(action: &str, field: &str, value: &str, relay_state: Option<&str>) -> HttpResponse {
    let mut params = vec![(field.to_string(), value.to_string())];
    if let Some(r) = relay_state {
        params.push(("RelayState".to_string(), r.to_string()));
    }
    auto_post(action, &params)
}

/// Ends the browser's session (if it has a live one) and starts telling the
/// session's SAML service providers; the chain ends at `finish`.
pub async fn sign_out_everywhere(
    req: &HttpRequest,
    state: &State,
    finish: &str,
) -> Result<Option<Outgoing>, super::page::PageError> {
    let Some(token) = super::page::session_token(req, state) else {
        return Ok(None);
    };
    if state
        .services
        .session_for_password_change(&token)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    let digest = crate::service::Services::session_digest(&token);
    let ip = super::page::client_info(req, state).ip;
    Ok(state
        .services
        .saml_logout_everywhere(&digest, finish, ip)
        .await?)
}

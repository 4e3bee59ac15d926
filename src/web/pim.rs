//! "My access" (eligible roles, requests, ending a window), the request
//! form, the approver's inbox, and the page a privileged app's gate shows.

use super::State;
use super::login::CsrfOnly;
use super::page::{
    CSRF_FAILED, CsrfForm, PageResult, allow_return, client_ip, csrf_ok, error_page, render,
    see_other, signed_in, urlencode,
};
use crate::domain::{Session, User};
use crate::error::Error;
use crate::protocol::login::safe_return_path;
use crate::service::pim::{ApprovalItem, ElevationInput, EligibilityView, RequestView};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/pim", web::get().to(my_access))
        .route("/pim/request", web::get().to(request_form))
        .route("/pim/request", web::post().to(submit_request))
        .route("/pim/approvals", web::get().to(inbox))
        .route("/pim/approvals/{id}", web::post().to(decide))
        .route("/pim/admin", web::get().to(admin))
        .route("/pim/admin/{id}/revoke", web::post().to(revoke))
        .route("/pim/{id}/end", web::post().to(end));
}

#[derive(Template)]
#[template(path = "needs_elevation.html")]
struct GatePage<'a> {
    role: &'a str,
    app: &'a str,
    gate: &'a str,
    request_link: String,
    resume: &'a str,
}

/// Rule 5's page: a privileged application refused the sign-in. An
/// eligible user is offered the request, which continues to `resume`.
pub fn needs_elevation(
    role: &str,
    app: &str,
    resume: &str,
    gate: crate::service::pim::Gate,
) -> HttpResponse {
    let page = GatePage {
        role,
        app,
        gate: gate.as_str(),
        resume,
        request_link: format!(
            "/pim/request?role={}&next={}",
            urlencode(role),
            urlencode(resume)
        ),
    };
    render(StatusCode::FORBIDDEN, &page)
}

/// The signed-in session and user; otherwise the handler answers with a
/// redirect to sign in and come back to `here`.
macro_rules! signed_in_or_login {
    ($req:expr, $state:expr, $here:expr) => {
        match need_user(&$req, &$state, $here).await? {
            Ok(s) => s,
            Err(redirect) => return Ok(redirect),
        }
    };
}

/// The signed-in user, or a redirect to sign in and come back to `here`.
async fn need_user(
    req: &HttpRequest,
    state: &State,
    here: &str,
) -> Result<Result<(Session, User), HttpResponse>, super::page::PageError> {
    Ok(match signed_in(req, state).await? {
        Some(s) => Ok(s),
        None => Err(see_other(&format!("/login?next={}", urlencode(here)))),
    })
}

#[derive(Template)]
#[template(path = "pim.html")]
struct MyAccessPage<'a> {
    csrf: &'a str,
    roles: Vec<EligibilityView>,
    requests: Vec<RequestView>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
    next: Option<&'a str>,
}

/// The list pages an action comes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListPage {
    MyAccess,
    Inbox,
    Admin,
}

/// What a list page says on top: a notice, or a refusal with its status.
struct Flash<'a> {
    status: StatusCode,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

const PLAIN: Flash<'static> = Flash {
    status: StatusCode::OK,
    notice: None,
    error: None,
};

async fn show(
    req: &HttpRequest,
    state: &State,
    user: &User,
    which: ListPage,
    flash: Flash<'_>,
    next: Option<&str>,
) -> PageResult {
    let Flash {
        status,
        notice,
        error,
    } = flash;
    if which == ListPage::Admin && !state.services.is_pim_admin(user).await? {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "Only members of the PIM administrators' group see this page.",
        ));
    }
    let csrf = CsrfForm::issue(req, state).await?;
    let res = match which {
        ListPage::MyAccess => render(
            status,
            &MyAccessPage {
                csrf: &csrf.token,
                roles: state.services.my_eligibilities(user).await?,
                requests: state.services.my_requests(user).await?,
                notice,
                error,
                next,
            },
        ),
        ListPage::Inbox => render(
            status,
            &InboxPage {
                csrf: &csrf.token,
                items: state.services.approval_inbox(user).await?,
                notice,
                error,
            },
        ),
        ListPage::Admin => render(
            status,
            &AdminPage {
                csrf: &csrf.token,
                open: state.services.open_elevations().await?,
                notice,
                error,
            },
        ),
    };
    Ok(csrf.attach(res))
}

/// The list page after an action: its notice, or the refusal. Server
/// faults stay errors.
async fn after(
    req: &HttpRequest,
    state: &State,
    user: &User,
    which: ListPage,
    result: crate::error::Result<String>,
) -> PageResult {
    match result {
        Ok(notice) => {
            let flash = Flash {
                notice: Some(&notice),
                ..PLAIN
            };
            show(req, state, user, which, flash, None).await
        }
        Err(e) if e.kind != crate::error::ErrorKind::Internal => {
            let flash = Flash {
                status: super::page::status_for(e.kind),
                notice: None,
                error: Some(e.public()),
            };
            show(req, state, user, which, flash, None).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn my_access(req: HttpRequest, state: State) -> PageResult {
    let (_, user) = signed_in_or_login!(req, state, "/pim");
    show(&req, &state, &user, ListPage::MyAccess, PLAIN, None).await
}

#[derive(Template)]
#[template(path = "pim_request.html")]
struct RequestPage<'a> {
    csrf: &'a str,
    role: &'a EligibilityView,
    next: &'a str,
    minutes: i64,
    reason: &'a str,
    ticket: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
pub struct RequestQuery {
    role: String,
    next: Option<String>,
    minutes: Option<i64>,
    reason: Option<String>,
    ticket: Option<String>,
}

pub async fn request_form(
    req: HttpRequest,
    state: State,
    q: web::Query<RequestQuery>,
) -> PageResult {
    let here = format!("/pim/request?{}", req.query_string());
    let (_, user) = signed_in_or_login!(req, state, &here);
    let next = safe_return_path(q.next.as_deref()).unwrap_or_default();
    form_page(
        &req,
        &state,
        &user,
        &q.role,
        &next,
        (q.minutes, q.reason.as_deref(), q.ticket.as_deref()),
        None,
    )
    .await
}

async fn form_page(
    req: &HttpRequest,
    state: &State,
    user: &User,
    role: &str,
    next: &str,
    (minutes, reason, ticket): (Option<i64>, Option<&str>, Option<&str>),
    error: Option<&str>,
) -> PageResult {
    let roles = state.services.my_eligibilities(user).await?;
    let Some(r) = roles.iter().find(|r| r.role == role) else {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "Not eligible",
            &format!("You are not eligible for {role}. Ask an administrator if you need it."),
        ));
    };
    let csrf = CsrfForm::issue(req, state).await?;
    let page = RequestPage {
        csrf: &csrf.token,
        role: r,
        next,
        minutes: minutes.unwrap_or((r.max_duration_seconds / 60).min(60)),
        reason: reason.unwrap_or(""),
        ticket: ticket.unwrap_or(""),
        error,
    };
    let status = if error.is_some() {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::OK
    };
    // The form's answer may redirect on to the application: browsers hold
    // those redirects to the CSP form-action of this page.
    let res = csrf.attach(render(status, &page));
    Ok(allow_return(state, next, res).await)
}

#[derive(Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    csrf: String,
    role: String,
    minutes: i64,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    ticket: String,
    #[serde(default)]
    start: String,
    #[serde(default)]
    next: String,
}

/// A `datetime-local` value (taken as UTC) or an RFC 3339 instant.
fn parse_start(s: &str) -> Result<Option<DateTime<Utc>>, Error> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .map(|t| Some(t.and_utc()))
        .map_err(|_| Error::invalid("the start is not a date and time"))
}

pub async fn submit_request(
    req: HttpRequest,
    state: State,
    form: web::Form<RequestForm>,
) -> PageResult {
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return Ok(error_page(StatusCode::FORBIDDEN, "Forbidden", CSRF_FAILED));
    }
    let (session, user) = signed_in_or_login!(req, state, "/pim");
    let next = safe_return_path(Some(&form.next));
    let keep = (
        Some(form.minutes),
        Some(form.reason.as_str()),
        Some(form.ticket.as_str()),
    );
    let start = match parse_start(&form.start) {
        Ok(s) => s,
        Err(e) => {
            let n = next.clone().unwrap_or_default();
            return form_page(&req, &state, &user, &form.role, &n, keep, Some(e.public())).await;
        }
    };
    let input = ElevationInput {
        role: form.role.clone(),
        // Out of range counts as too long; the policy check says so.
        duration: chrono::Duration::try_minutes(form.minutes).unwrap_or(chrono::Duration::MAX),
        reason: form.reason.clone(),
        ticket: Some(form.ticket.clone()),
        start,
    };
    let ip = client_ip(&req, &state);
    match state
        .services
        .request_elevation(&user, Some(&session), Some(session.created_at), input, ip)
        .await
    {
        Ok(view) => {
            if view.state == "active"
                && let Some(n) = &next
            {
                return Ok(see_other(n));
            }
            let notice = match view.state.as_str() {
                "active" => format!(
                    "{} is active until {}.",
                    view.role,
                    view.ends_at.format("%H:%M UTC")
                ),
                "approved" => format!(
                    "{} is approved from {}.",
                    view.role,
                    view.starts_at.format("%Y-%m-%d %H:%M UTC")
                ),
                _ => format!("Your request for {} is waiting for approval.", view.role),
            };
            let flash = Flash {
                notice: Some(&notice),
                ..PLAIN
            };
            show(
                &req,
                &state,
                &user,
                ListPage::MyAccess,
                flash,
                next.as_deref(),
            )
            .await
        }
        Err(e) if e.code() == Some("fresh_mfa_required") => {
            // Step up, then come back to the same form, filled in.
            let back = format!(
                "/pim/request?role={}&minutes={}&reason={}&ticket={}&next={}",
                urlencode(&form.role),
                form.minutes,
                urlencode(&form.reason),
                urlencode(&form.ticket),
                urlencode(next.as_deref().unwrap_or(""))
            );
            Ok(see_other(&format!(
                "/account/verify?next={}&reason=elevation&role={}",
                urlencode(&back),
                urlencode(&form.role)
            )))
        }
        Err(e)
            if e.kind != crate::error::ErrorKind::Internal
                && e.kind != crate::error::ErrorKind::Unavailable =>
        {
            let n = next.unwrap_or_default();
            form_page(&req, &state, &user, &form.role, &n, keep, Some(e.public())).await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn end(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> PageResult {
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return Ok(error_page(StatusCode::FORBIDDEN, "Forbidden", CSRF_FAILED));
    }
    let (_, user) = signed_in_or_login!(req, state, "/pim");
    let ip = client_ip(&req, &state);
    let result = state.services.end_elevation(&user, &id, ip).await;
    let notice = result.map(|v| format!("{} is {} now.", v.role, v.state));
    after(&req, &state, &user, ListPage::MyAccess, notice).await
}

#[derive(Template)]
#[template(path = "pim_approvals.html")]
struct InboxPage<'a> {
    csrf: &'a str,
    items: Vec<ApprovalItem>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

pub async fn inbox(req: HttpRequest, state: State) -> PageResult {
    let (_, user) = signed_in_or_login!(req, state, "/pim/approvals");
    show(&req, &state, &user, ListPage::Inbox, PLAIN, None).await
}

#[derive(Deserialize)]
pub struct DecisionForm {
    #[serde(default)]
    csrf: String,
    decision: String,
    #[serde(default)]
    comment: String,
}

pub async fn decide(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> PageResult {
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return Ok(error_page(StatusCode::FORBIDDEN, "Forbidden", CSRF_FAILED));
    }
    let (_, user) = signed_in_or_login!(req, state, "/pim/approvals");
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return Err(super::page::PageError::bad_request(
                "decide approve or deny",
            ));
        }
    };
    let ip = client_ip(&req, &state);
    let result = state
        .services
        .decide_elevation(&user, &id, approve, &form.comment, ip)
        .await;
    let notice = result.map(|v| format!("{}'s request for {} is {} now.", v.user, v.role, v.state));
    after(&req, &state, &user, ListPage::Inbox, notice).await
}

#[derive(Template)]
#[template(path = "pim_admin.html")]
struct AdminPage<'a> {
    csrf: &'a str,
    open: Vec<RequestView>,
    notice: Option<&'a str>,
    error: Option<&'a str>,
}

pub async fn admin(req: HttpRequest, state: State) -> PageResult {
    let (_, user) = signed_in_or_login!(req, state, "/pim/admin");
    show(&req, &state, &user, ListPage::Admin, PLAIN, None).await
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

pub async fn revoke(
    req: HttpRequest,
    state: State,
    id: web::Path<String>,
    form: web::Form<RevokeForm>,
) -> PageResult {
    if !csrf_ok(&req, &state, &form.csrf).await? {
        return Ok(error_page(StatusCode::FORBIDDEN, "Forbidden", CSRF_FAILED));
    }
    let (_, user) = signed_in_or_login!(req, state, "/pim/admin");
    if !state.services.is_pim_admin(&user).await? {
        return show(&req, &state, &user, ListPage::Admin, PLAIN, None).await;
    }
    let actor = crate::service::Actor::user(
        user.username.as_str(),
        client_ip(&req, &state).map(|i| i.to_string()),
    );
    let result = state
        .services
        .revoke_elevation(&actor, &id, &form.reason)
        .await;
    let notice = result.map(|v| format!("{}'s {} is {} now.", v.user, v.role, v.state));
    after(&req, &state, &user, ListPage::Admin, notice).await
}

//! Shared pieces of the HTML side: rendering, the error page, cookies, the
//! client address and CSRF checks.

use super::{AppState, State};
use crate::domain::{Session, User};
use crate::error::{Error, ErrorKind};
use crate::protocol::client_ip;
use crate::service::auth::ClientInfo;
use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use askama::Template;
use std::fmt;

/// Cookie that identifies one browser: CSRF tokens and multi-step
/// transactions (authorization, consent) are bound to it. On https it
/// carries the `__Host-` prefix, so a sibling subdomain cannot plant one.
pub const CSRF_COOKIE: &str = "portcullis_csrf";
const CSRF_COOKIE_HOST: &str = "__Host-portcullis_csrf";

/// The binding cookie's name for this server.
fn csrf_cookie(state: &AppState) -> &'static str {
    if state.secure_cookies {
        CSRF_COOKIE_HOST
    } else {
        CSRF_COOKIE
    }
}

/// The Content-Security-Policy of every page; `form_action` lists where its
/// forms (and the redirects after them) may go.
pub fn csp(form_action: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; form-action {form_action}; frame-ancestors 'none'"
    )
}

/// Lets a page's forms end at the relying party an authorization in
/// progress returns to (see `authorization_return_origin`).
pub async fn allow_return(state: &State, next: &str, mut res: HttpResponse) -> HttpResponse {
    if let Some(origin) = state.services.authorization_return_origin(next).await
        && let Ok(v) = csp(&format!("'self' {origin}")).parse()
    {
        res.headers_mut()
            .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Throttled => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable | ErrorKind::Contention => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Sends a rendered page. Pages are never cached: they carry CSRF tokens and
/// personal data.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((CACHE_CONTROL, "no-store"))
        .body(body)
}

pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(body) => html(status, body),
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            html(StatusCode::INTERNAL_SERVER_ERROR, "internal error".into())
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorTemplate<'a> {
    title: &'a str,
    message: &'a str,
}

pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    render(status, &ErrorTemplate { title, message })
}

/// An [`Error`] shown as an HTML page.
#[derive(Debug)]
pub struct PageError(pub Error);

impl PageError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self(Error::invalid(msg))
    }
}

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        status_for(self.0.kind)
    }

    fn error_response(&self) -> HttpResponse {
        if self.0.code() == Some(crate::service::auth::PASSWORD_CHANGE_REQUIRED) {
            // A one-time password's session: every page leads to choosing a new one.
            return see_other("/account/password");
        }
        let status = self.status_code();
        if status.is_server_error() {
            tracing::error!(error = %self.0, "request failed");
        }
        let title = status.canonical_reason().unwrap_or("Error");
        error_page(status, title, self.0.public())
    }
}

pub type PageResult = Result<HttpResponse, PageError>;

pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", location))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

pub fn client_info(req: &HttpRequest, state: &AppState) -> ClientInfo {
    let peer = req.peer_addr().map(|a| a.ip());
    let settings = &state.services.settings;
    // Read only when a proxy is trusted: otherwise the peer is the client.
    let hops = if settings.trusted_proxies.is_empty() {
        None
    } else {
        let lines = |name| req.headers().get_all(name).filter_map(|v| v.to_str().ok());
        match settings.forwarded_header {
            crate::config::ForwardedHeader::XForwardedFor => {
                client_ip::join_lines(lines("x-forwarded-for"))
            }
            crate::config::ForwardedHeader::Forwarded => {
                client_ip::forwarded_to_list(lines("forwarded"))
            }
        }
    };
    let ip = peer.map(|p| client_ip::resolve(p, hops.as_deref(), &settings.trusted_proxies));
    ClientInfo {
        ip: ip.map(|i| i.to_string()),
        user_agent: req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// `s` percent-encoded for a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The address the request came from (through trusted proxies only).
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<std::net::IpAddr> {
    client_info(req, state).ip.and_then(|i| i.parse().ok())
}

pub fn cookie<'a>(state: &AppState, name: &'a str, value: String) -> Cookie<'a> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(state.secure_cookies)
        .same_site(SameSite::Lax)
        .finish()
}

pub fn removal_cookie<'a>(state: &AppState, name: &'a str) -> Cookie<'a> {
    let mut c = cookie(state, name, String::new());
    c.make_removal();
    c
}

pub fn session_token(req: &HttpRequest, state: &AppState) -> Option<String> {
    req.cookie(&state.services.settings.session.cookie_name)
        .map(|c| c.value().to_string())
}

/// The browser's binding cookie, and the cookie to set when it is new.
#[derive(Clone)]
pub struct Browser {
    pub binding: String,
    pub new_cookie: Option<Cookie<'static>>,
}

impl Browser {
    pub fn of(req: &HttpRequest, state: &State) -> Self {
        match req.cookie(csrf_cookie(state)) {
            Some(c) if !c.value().is_empty() && c.value().len() <= 128 => Self {
                binding: c.value().to_string(),
                new_cookie: None,
            },
            _ => {
                let b = crate::crypto::random_token();
                Self {
                    binding: b.clone(),
                    new_cookie: Some(cookie(state, csrf_cookie(state), b)),
                }
            }
        }
    }

    /// Adds the binding cookie, if new, to a response.
    pub fn attach(&self, mut res: HttpResponse) -> HttpResponse {
        if let Some(c) = &self.new_cookie {
            let _ = res.add_cookie(c);
        }
        res
    }
}

/// A CSRF token for a form on this page, and the browser it belongs to
/// (whose binding cookie is set when the browser does not have one yet).
pub struct CsrfForm {
    pub token: String,
    browser: Browser,
}

impl CsrfForm {
    pub async fn issue(req: &HttpRequest, state: &State) -> Result<Self, PageError> {
        Self::for_browser(state, &Browser::of(req, state)).await
    }

    pub async fn for_browser(state: &State, b: &Browser) -> Result<Self, PageError> {
        let token = state.services.issue_csrf(&b.binding).await?;
        Ok(Self {
            token,
            browser: b.clone(),
        })
    }

    /// Adds the binding cookie, if new, to a response.
    pub fn attach(&self, res: HttpResponse) -> HttpResponse {
        self.browser.attach(res)
    }
}

/// The binding cookie's value, empty when the browser has none.
pub fn browser_binding(req: &HttpRequest, state: &AppState) -> String {
    req.cookie(csrf_cookie(state))
        .map(|c| c.value().to_string())
        .unwrap_or_default()
}

/// True when the submitted token belongs to this browser.
pub async fn csrf_ok(req: &HttpRequest, state: &State, token: &str) -> Result<bool, PageError> {
    Ok(state
        .services
        .check_csrf(token, &browser_binding(req, state))
        .await?)
}

pub const CSRF_FAILED: &str =
    "This form has expired or did not come from this site. Please try again.";

/// The live session and user behind the request, if any.
pub async fn signed_in(
    req: &HttpRequest,
    state: &State,
) -> Result<Option<(Session, User)>, PageError> {
    match session_token(req, state) {
        Some(t) => Ok(state.services.session_for(&t).await?),
        None => Ok(None),
    }
}

/// Like [`signed_in`], but also a session that may only change the
/// password (opened with a one-time password): for the password pages.
pub async fn signed_in_for_password_change(
    req: &HttpRequest,
    state: &State,
) -> Result<Option<(Session, User)>, PageError> {
    match session_token(req, state) {
        Some(t) => Ok(state.services.session_for_password_change(&t).await?),
        None => Ok(None),
    }
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct AutoPostPage<'a> {
    action: &'a str,
    params: &'a [(String, String)],
}

/// A page whose form posts `params` to `action` by itself (a Continue button
/// without JavaScript): OIDC form_post responses and SAML's POST binding.
/// Its CSP lets the form go to that one origin only.
pub fn auto_post(action: &str, params: &[(String, String)]) -> HttpResponse {
    let mut res = render(StatusCode::OK, &AutoPostPage { action, params });
    let origin = url::Url::parse(action)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".into());
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; form-action {origin}; frame-ancestors 'none'; base-uri 'none'"
    );
    if let Ok(v) = csp.parse() {
        res.headers_mut()
            .insert(actix_web::http::header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// Sends the browser to sign in and come back to `resume` (a local path).
pub fn to_sign_in(resume: &str, login_hint: Option<&str>, reauth: bool) -> HttpResponse {
    let mut params = vec![("next", resume)];
    if let Some(h) = login_hint {
        params.push(("login_hint", h));
    }
    if reauth {
        params.push(("reauth", "1"));
    }
    let to = crate::protocol::oidc::uri::with_query("http://x/login", &params);
    see_other(to.trim_start_matches("http://x"))
}

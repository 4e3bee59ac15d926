//! The route inventory and the parameter bounds it sets.
//!
//! Every route is listed here with what guards it (CSRF token, client
//! authentication, bearer token, a signed SAML message, …) and the bounds
//! on its query and body. The `bound_params` middleware applies the bounds
//! before any handler runs, in linear time, and answers an oversize request
//! with a 400 at once. A unit test fails when a route is added to the router
//! without an entry here.

use super::page::error_page;
use crate::protocol::params::{Limits, ParamError, check};
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{HttpMessage, HttpResponse, http::Method};
use futures_util::StreamExt;
use serde_json::json;

/// What a route requires before it changes anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// Reads only.
    ReadOnly,
    /// Starts work anyone may start (a login transaction); bounded, and
    /// refused with 503 when the ephemeral store is nearly full.
    AnonymousWork,
    /// A CSRF token bound to the browser's cookie.
    Csrf,
    /// OAuth client authentication (secret or signed assertion), or PKCE.
    ClientAuth,
    /// An access token (or, for the PIM API, the session cookie with a JSON
    /// content type, which a cross-site form cannot send).
    Bearer,
    /// The registration access token of RFC 7592.
    RegistrationToken,
    /// An initial access token, when registration requires one.
    InitialAccessToken,
    /// A SAML message: signed, or from a service provider registered for it.
    SamlMessage,
    /// A one-time invitation secret in the path, plus a CSRF token.
    InviteToken,
}

pub struct RouteRule {
    pub method: Method,
    pub pattern: &'static str,
    pub guard: Guard,
    pub limits: Limits,
}

const fn rule(method: Method, pattern: &'static str, guard: Guard, limits: Limits) -> RouteRule {
    RouteRule {
        method,
        pattern,
        guard,
        limits,
    }
}

use Guard::*;
const D: Limits = Limits::DEFAULT;
const S: Limits = Limits::SAML;
const J: Limits = Limits::JSON;

pub const ROUTES: &[RouteRule] = &[
    rule(Method::GET, "/", ReadOnly, D),
    rule(Method::GET, "/login", ReadOnly, D),
    rule(Method::POST, "/login", Csrf, D),
    rule(Method::POST, "/login/second-factor", Csrf, D),
    rule(Method::POST, "/logout", Csrf, D),
    rule(Method::GET, "/account", ReadOnly, D),
    rule(Method::GET, "/account/password", ReadOnly, D),
    rule(Method::POST, "/account/password", Csrf, D),
    rule(Method::GET, "/account/verify", ReadOnly, D),
    rule(Method::GET, "/account/security", ReadOnly, D),
    rule(Method::POST, "/account/security/totp", Csrf, D),
    rule(Method::POST, "/account/security/totp/confirm", Csrf, D),
    rule(Method::POST, "/account/security/totp/remove", Csrf, D),
    rule(Method::POST, "/account/security/recovery", Csrf, D),
    rule(Method::POST, "/account/security/passkeys/rename", Csrf, D),
    rule(Method::POST, "/account/security/passkeys/remove", Csrf, D),
    rule(Method::POST, "/account/security/sessions/end", Csrf, D),
    rule(Method::GET, "/healthz", ReadOnly, D),
    rule(Method::GET, "/readyz", ReadOnly, D),
    rule(Method::GET, "/metrics", ReadOnly, D),
    rule(Method::GET, "/static/{file}", ReadOnly, D),
    // OpenID Connect and OAuth 2.0
    rule(
        Method::GET,
        "/.well-known/openid-configuration",
        ReadOnly,
        D,
    ),
    rule(
        Method::GET,
        "/.well-known/oauth-authorization-server",
        ReadOnly,
        D,
    ),
    rule(Method::GET, "/jwks", ReadOnly, D),
    rule(Method::GET, "/authorize", AnonymousWork, D),
    rule(Method::POST, "/authorize", AnonymousWork, D),
    rule(Method::GET, "/authorize/resume", ReadOnly, D),
    rule(Method::POST, "/authorize/consent", Csrf, D),
    rule(Method::POST, "/token", ClientAuth, D),
    rule(Method::GET, "/userinfo", Bearer, D),
    rule(Method::POST, "/userinfo", Bearer, D),
    rule(Method::POST, "/introspect", ClientAuth, D),
    rule(Method::POST, "/revoke", ClientAuth, D),
    rule(Method::POST, "/register", InitialAccessToken, J),
    rule(Method::GET, "/register/{client_id}", RegistrationToken, D),
    rule(Method::PUT, "/register/{client_id}", RegistrationToken, J),
    rule(
        Method::DELETE,
        "/register/{client_id}",
        RegistrationToken,
        D,
    ),
    rule(Method::GET, "/end-session", AnonymousWork, D),
    rule(Method::POST, "/end-session", AnonymousWork, D),
    rule(Method::POST, "/end-session/confirm", Csrf, D),
    // SAML 2.0
    rule(Method::GET, "/saml/metadata", ReadOnly, D),
    rule(Method::GET, "/saml/sso", AnonymousWork, S),
    rule(Method::POST, "/saml/sso", AnonymousWork, S),
    rule(Method::GET, "/saml/resume", ReadOnly, D),
    rule(Method::GET, "/saml/sso/init", ReadOnly, D),
    rule(Method::GET, "/saml/slo", SamlMessage, S),
    rule(Method::POST, "/saml/slo", SamlMessage, S),
    // Passkeys (JSON bodies carry the CSRF token)
    rule(Method::POST, "/webauthn/register/start", Csrf, J),
    rule(Method::POST, "/webauthn/register/finish", Csrf, J),
    rule(Method::POST, "/webauthn/login/start", AnonymousWork, J),
    rule(Method::POST, "/webauthn/login/finish", Csrf, J),
    rule(Method::POST, "/webauthn/second-factor/start", Csrf, J),
    rule(Method::POST, "/webauthn/second-factor/finish", Csrf, J),
    rule(Method::POST, "/webauthn/verify/start", Csrf, J),
    rule(Method::POST, "/webauthn/verify/finish", Csrf, J),
    rule(Method::GET, "/invite/{token}", ReadOnly, D),
    rule(Method::POST, "/invite/{token}/start", InviteToken, J),
    rule(Method::POST, "/invite/{token}/finish", InviteToken, J),
    // Privileged Identity Management
    rule(Method::GET, "/pim", ReadOnly, D),
    rule(Method::GET, "/pim/request", ReadOnly, D),
    rule(Method::POST, "/pim/request", Csrf, D),
    rule(Method::GET, "/pim/approvals", ReadOnly, D),
    rule(Method::POST, "/pim/approvals/{id}", Csrf, D),
    rule(Method::GET, "/pim/admin", ReadOnly, D),
    rule(Method::POST, "/pim/admin/{id}/revoke", Csrf, D),
    rule(Method::POST, "/pim/{id}/end", Csrf, D),
    rule(Method::GET, "/api/v1/me/eligibilities", Bearer, D),
    rule(Method::GET, "/api/v1/me/elevations", Bearer, D),
    rule(Method::POST, "/api/v1/me/elevations", Bearer, J),
    rule(Method::GET, "/api/v1/me/elevations/{id}", Bearer, D),
    rule(Method::POST, "/api/v1/me/elevations/{id}/end", Bearer, J),
    rule(Method::GET, "/api/v1/elevations", Bearer, D),
    rule(Method::POST, "/api/v1/elevations/{id}/revoke", Bearer, J),
    rule(Method::GET, "/api/v1/approvals", Bearer, D),
    rule(Method::POST, "/api/v1/approvals/{id}", Bearer, J),
];

/// The rule for a matched route; unknown routes (404s) get the defaults.
fn rule_for(method: &Method, pattern: Option<&str>) -> &'static Limits {
    pattern
        .and_then(|p| {
            ROUTES
                .iter()
                .find(|r| r.pattern == p && (r.method == method || method == Method::HEAD))
        })
        .map(|r| &r.limits)
        .unwrap_or(&Limits::DEFAULT)
}

/// A 400 in the form the endpoint speaks: OAuth JSON for APIs, a page for
/// browsers.
fn refuse(req: &ServiceRequest, why: &str, status: StatusCode) -> HttpResponse {
    let path = req.path();
    let api = [
        "/token",
        "/introspect",
        "/revoke",
        "/register",
        "/userinfo",
        "/api/",
        "/webauthn/",
    ]
    .iter()
    .any(|p| path.starts_with(p));
    if api {
        HttpResponse::build(status).json(json!({
            "error": "invalid_request",
            "error_description": why,
        }))
    } else {
        error_page(status, "Bad request", why)
    }
}

fn is_form(req: &ServiceRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Reads at most `max` bytes of the body; `None` when it is longer.
async fn read_bounded(
    payload: &mut Payload,
    max: usize,
) -> Result<Option<Bytes>, actix_web::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > max {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body.freeze()))
}

/// Applies the route's bounds to the query string and the body before any
/// handler sees them.
pub async fn bound_params(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let pattern = req.match_pattern();
    let limits = *rule_for(req.method(), pattern.as_deref());
    if let Err(e) = check(req.query_string().as_bytes(), &limits) {
        let res = refuse(&req, &e.describe(), StatusCode::BAD_REQUEST);
        return Ok(req.into_response(res).map_into_right_body());
    }
    let has_body = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if has_body {
        let mut payload = req.take_payload();
        let Some(body) = read_bounded(&mut payload, limits.max_total).await? else {
            let e = ParamError::TooLarge {
                max: limits.max_total,
            };
            let res = refuse(&req, &e.describe(), StatusCode::PAYLOAD_TOO_LARGE);
            return Ok(req.into_response(res).map_into_right_body());
        };
        if is_form(&req)
            && let Err(e) = check(&body, &limits)
        {
            let res = refuse(&req, &e.describe(), StatusCode::BAD_REQUEST);
            return Ok(req.into_response(res).map_into_right_body());
        }
        req.set_payload(Payload::from(body));
    }
    next.call(req).await.map(|r| r.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `.route(…)` registered in `src/web` has an entry in [`ROUTES`],
    /// and every entry names a registered route.
    #[test]
    fn every_route_is_in_the_inventory() {
        use crate::protocol::oidc::discovery::paths;
        let consts = [
            ("paths::AUTHORIZE", paths::AUTHORIZE),
            ("paths::TOKEN", paths::TOKEN),
            ("paths::USERINFO", paths::USERINFO),
            ("paths::JWKS", paths::JWKS),
            ("paths::REGISTER", paths::REGISTER),
            ("paths::INTROSPECT", paths::INTROSPECT),
            ("paths::REVOKE", paths::REVOKE),
            ("paths::END_SESSION", paths::END_SESSION),
        ];
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/web");
        let mut source = String::new();
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(p) = stack.pop() {
            for e in std::fs::read_dir(&p).unwrap() {
                let path = e.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    source.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        let re = regex::Regex::new(
            r#"\.route\(\s*("([^"]+)"|(paths::[A-Z_]+))\s*,\s*web::(get|post|put|delete)\(\)"#,
        )
        .unwrap();
        let mut registered = Vec::new();
        for c in re.captures_iter(&source) {
            let pattern = match (c.get(2), c.get(3)) {
                (Some(lit), _) => lit.as_str(),
                (_, Some(k)) => {
                    consts
                        .iter()
                        .find(|(n, _)| *n == k.as_str())
                        .unwrap_or_else(|| panic!("unknown path constant {}", k.as_str()))
                        .1
                }
                _ => unreachable!(),
            };
            let method: Method = c[4].to_ascii_uppercase().parse().unwrap();
            registered.push((method, pattern.to_string()));
        }
        assert!(registered.len() > 60, "found only {}", registered.len());
        for (m, p) in &registered {
            assert!(
                ROUTES.iter().any(|r| r.method == *m && r.pattern == p),
                "{m} {p} is routed but has no entry in web::limits::ROUTES: \
                 add it with its guard and parameter limits"
            );
        }
        for r in ROUTES {
            assert!(
                registered
                    .iter()
                    .any(|(m, p)| m == r.method && p == r.pattern),
                "{} {} is in the inventory but not routed",
                r.method,
                r.pattern
            );
        }
        // Nothing that changes state is left unguarded.
        for r in ROUTES.iter().filter(|r| r.method != Method::GET) {
            assert_ne!(r.guard, ReadOnly, "{} {}", r.method, r.pattern);
        }
    }
}

//! Privileged Identity Management over HTTP: the six elevation rules with a
//! fixed clock on OIDC and SAML, conditions, approval, privileged apps,
//! ending, webhooks and the CLI.

mod basis;
mod conditions;
mod ending;
mod flow;
mod laundering;
mod race;
mod rules;
mod scopes;

use crate::common::{Browser, PASSWORD, TestServer};
pub use crate::oidc::rules::introspect;
use crate::oidc::{REDIRECT, VERIFIER, authorize_url, client, draft, param, redeem};
use portcullis::service::Actor;
use portcullis::service::oidc::clients::NewClient;
use portcullis::service::pim::{PolicyInput, Principal};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

pub const ROLE: &str = "billing-admin";

/// Creates a group with these members.
pub async fn group(srv: &TestServer, name: &str, members: &[&str]) {
    srv.services
        .create_group(&Actor::cli(), name, "")
        .await
        .unwrap();
    for m in members {
        srv.services
            .set_membership(&Actor::cli(), name, m, true)
            .await
            .unwrap();
    }
}

/// Creates the role, gives it `policy`, and makes `user` eligible.
pub async fn privileged_role(srv: &TestServer, policy: PolicyInput, user: &str) {
    srv.services
        .create_role(&Actor::cli(), ROLE, "Billing administration")
        .await
        .unwrap();
    srv.services
        .set_pim_policy(&Actor::cli(), ROLE, policy)
        .await
        .unwrap();
    eligible(srv, user).await;
}

/// Makes `user` eligible for [`ROLE`] without an end.
pub async fn eligible(srv: &TestServer, user: &str) {
    srv.services
        .add_eligibility(
            &Actor::cli(),
            ROLE,
            Principal::User(user.into()),
            None,
            None,
        )
        .await
        .unwrap();
}

/// An auto-approved policy with a 2h maximum.
pub fn open_policy() -> PolicyInput {
    PolicyInput {
        max_duration: Some(std::time::Duration::from_secs(7200)),
        ..PolicyInput::default()
    }
}

/// A signed-in browser for a new user.
pub async fn signed_in(srv: &TestServer, name: &str) -> Browser {
    srv.user(name).await;
    let b = srv.browser();
    assert_eq!(b.login(name, PASSWORD).await.status, 303);
    b
}

/// POST /api/v1/me/elevations with the browser's session.
pub async fn request(b: &Browser, minutes: i64, xff: Option<&str>) -> (u16, Value) {
    request_body(
        b,
        json!({"role": ROLE, "duration_seconds": minutes * 60, "reason": "month-end billing run"}),
        xff,
    )
    .await
}

pub async fn request_body(b: &Browser, body: Value, xff: Option<&str>) -> (u16, Value) {
    let mut req = b.http.post(api(b, "/api/v1/me/elevations")).json(&body);
    if let Some(ip) = xff {
        req = req.header("X-Forwarded-For", ip);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

/// The absolute URL of `path` on the browser's server.
pub fn api(b: &Browser, path: &str) -> String {
    format!("{}{path}", b.base())
}

/// A code flow for `c` in browser `b` (already signed in); the token answer.
/// A GET of the JSON API as this browser's user.
pub async fn get_json(b: &Browser, path: &str) -> Value {
    let r = b.http.get(api(b, path)).send().await.unwrap();
    r.json().await.unwrap()
}

/// Ends (or withdraws) one's own elevation through the JSON API.
pub async fn end_elevation(b: &Browser, id: &Value) -> (u16, Value) {
    let path = format!("/api/v1/me/elevations/{}/end", id.as_str().unwrap());
    let r = b
        .http
        .post(api(b, &path))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// An approver's decision through the JSON API.
pub async fn decide(b: &Browser, id: &Value, decision: &str) -> (u16, Value) {
    let path = format!("/api/v1/approvals/{}", id.as_str().unwrap());
    let r = b
        .http
        .post(api(b, &path))
        .json(&json!({"decision": decision, "comment": "checked the ticket"}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

pub async fn tokens(srv: &TestServer, b: &Browser, c: &NewClient, scope: &str) -> Value {
    tokens_from(srv, b, c, scope, None).await
}

pub async fn tokens_from(
    srv: &TestServer,
    b: &Browser,
    c: &NewClient,
    scope: &str,
    xff: Option<&str>,
) -> Value {
    let url = authorize_url(srv, c, &[("scope", scope)]);
    let mut req = b.http.get(&url);
    if let Some(ip) = xff {
        req = req.header("X-Forwarded-For", ip);
    }
    let r = req.send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let code = param(&loc, "code").unwrap_or_else(|| panic!("no code: {loc}"));
    let (st, t) = redeem(srv, c, &code, VERIFIER).await;
    assert_eq!(st, 200, "{t}");
    t
}

pub async fn refresh(srv: &TestServer, c: &NewClient, rt: &str) -> (u16, Value) {
    let (s, v, _) = crate::oidc::post_token(
        srv,
        c,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
    )
    .await;
    (s, v)
}

pub fn claims(jwt: &str) -> Value {
    crate::oidc::flow_payload(jwt)
}

pub async fn rp_client(srv: &TestServer) -> NewClient {
    let mut d = draft("payroll");
    d.scopes.push("pim".into());
    client(srv, d).await
}

/// An OIDC client named `name` and the SAML test SP, both taking
/// back-channel logout at the receiver (`/bcl` and `/soap`).
pub async fn logout_receivers(srv: &TestServer, rx: &Receiver, name: &str) -> NewClient {
    let mut d = draft(name);
    d.backchannel_logout_uri = Some(format!("{}/bcl", rx.base));
    let c = client(srv, d).await;
    srv.services
        .add_sp(
            &Actor::cli(),
            portcullis::service::saml::registry::SpInput {
                entity_id: Some(crate::saml::SP_ENTITY.into()),
                acs_urls: vec![crate::saml::ACS.into()],
                sign_response: true,
                sign_assertion: true,
                soap_slo_url: Some(format!("{}/soap", rx.base)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    c
}

/// A PIM API call with the access token `at`: a GET, or a POST with an
/// approval (or, for `/revoke`, a revocation reason).
pub async fn call(srv: &TestServer, at: &str, post: bool, path: &str) -> (u16, Value) {
    let http = reqwest::Client::new();
    let req = if post {
        let body = if path.ends_with("/revoke") {
            json!({"reason": "audit finding"})
        } else {
            json!({"decision": "approve", "comment": "looks fine"})
        };
        http.post(srv.url(path)).json(&body)
    } else {
        http.get(srv.url(path))
    };
    let r = req.bearer_auth(at).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

/// What a test receiver was sent: path, headers, body.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP receiver that records every POST and answers 500 to the first
/// `fail_first` of them, 200 afterwards.
pub struct Receiver {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Received>>>,
    handle: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let server = actix_web::HttpServer::new(move || {
            let s = s.clone();
            actix_web::App::new().default_service(actix_web::web::to(
                move |req: actix_web::HttpRequest, body: actix_web::web::Bytes| {
                    let s = s.clone();
                    async move {
                        let mut all = s.lock().unwrap();
                        all.push(Received {
                            path: req.path().to_string(),
                            headers: req
                                .headers()
                                .iter()
                                .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                                .collect(),
                            body: String::from_utf8_lossy(&body).to_string(),
                        });
                        if all.len() <= fail_first {
                            actix_web::HttpResponse::InternalServerError().finish()
                        } else {
                            actix_web::HttpResponse::Ok().finish()
                        }
                    }
                },
            ))
        })
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base: format!("http://localhost:{port}"),
            seen,
            handle,
        }
    }

    /// Waits (up to 10 s of real time, for background delivery) until
    /// something matching `pred` arrived.
    pub async fn wait_for(&self, pred: impl Fn(&Received) -> bool) -> Received {
        for _ in 0..200 {
            if let Some(r) = self.seen.lock().unwrap().iter().find(|r| pred(r)) {
                return r.clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("nothing matching arrived: {:?}", self.seen.lock().unwrap());
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let h = self.handle.clone();
        tokio::spawn(async move { h.stop(false).await });
    }
}

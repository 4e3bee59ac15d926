//! Ending a session ends what was issued in it. An attacker who signed in
//! once as an approver and took tokens keeps nothing of the session once
//! the user ends it (security page, sign-out, RP-initiated logout, a
//! timeout): the grants it issued are revoked, but those the user granted
//! for offline use — and a refresh token of those still refreshes, yet it
//! no longer approves or administers for anyone: that needs the sign-in
//! the token came from alive.

use crate::common::{Backend, Browser, PASSWORD, TestEnv, TestServer, backends, field_value};
use crate::oidc::{client, draft};
use crate::pim::{
    Receiver, call, introspect, open_policy, privileged_role, refresh, request, signed_in, tokens,
};
use portcullis::service::Actor;
use portcullis::service::oidc::clients::NewClient;
use portcullis::service::pim::PolicyInput;
use serde_json::Value;

const ENDED: &str = "the sign-in this token was granted in has ended";
const APPROVER: &str = "openid pim pim:approve pim:admin offline_access";

/// A first-party app that may ask for every PIM scope.
async fn approvals_app(srv: &TestServer, backchannel: Option<&Receiver>) -> NewClient {
    let mut d = draft("approvals-cli");
    d.scopes.extend(
        ["pim", "pim:approve", "pim:admin"]
            .iter()
            .map(|s| s.to_string()),
    );
    d.backchannel_logout_uri = backchannel.map(|rx| format!("{}/bcl", rx.base));
    client(srv, d).await
}

/// ada may elevate with dave's approval (dave also administers PIM); ada's
/// request is pending. Its ID.
async fn pending_request(srv: &TestServer) -> String {
    let ada = signed_in(srv, "ada").await;
    srv.user("dave").await;
    let _ = srv
        .services
        .create_group(&Actor::cli(), "approvers", "")
        .await;
    let _ = srv.services.create_group(&Actor::cli(), "admins", "").await;
    for g in ["approvers", "admins"] {
        srv.services
            .set_membership(&Actor::cli(), g, "dave", true)
            .await
            .unwrap();
    }
    let policy = PolicyInput {
        approval: Some("group:approvers:1".into()),
        ..open_policy()
    };
    privileged_role(srv, policy, "ada").await;
    let (st, q) = request(&ada, 30, None).await;
    assert_eq!((st, q["state"].as_str()), (201, Some("pending")), "{q}");
    q["id"].as_str().unwrap().to_string()
}

async fn userinfo(srv: &TestServer, at: &str) -> u16 {
    reqwest::Client::new()
        .get(srv.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn at(t: &Value) -> &str {
    t["access_token"].as_str().unwrap()
}

/// A fresh access token from an offline grant's refresh token: it still
/// refreshes, since the user granted it for offline use.
async fn refreshed(srv: &TestServer, c: &NewClient, t: &Value) -> String {
    let (st, v) = refresh(srv, c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(st, 200, "an offline grant outlives the session: {v}");
    v["access_token"].as_str().unwrap().to_string()
}

/// The token acts for dave no more as an approver or administrator.
async fn cannot_act_on_others(srv: &TestServer, at: &str, id: &str, what: &str) {
    for (post, path) in [
        (true, format!("/api/v1/approvals/{id}")),
        (false, "/api/v1/approvals".to_string()),
        (false, "/api/v1/elevations".to_string()),
        (true, format!("/api/v1/elevations/{id}/revoke")),
    ] {
        let (st, e) = call(srv, at, post, &path).await;
        assert_eq!(
            (st, e["error"].as_str(), e["error_description"].as_str()),
            (401, Some("invalid_token"), Some(ENDED)),
            "{what} {path}: {e}"
        );
    }
}

/// The request was not decided by the attacker.
async fn still_pending(srv: &TestServer, id: &str) {
    let b = srv.browser();
    assert_eq!(b.login("ada", PASSWORD).await.status, 303);
    let r = b
        .http
        .get(srv.url(&format!("/api/v1/me/elevations/{id}")))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "pending", "{v}");
}

/// dave, in his own browser, ends every session but this one.
async fn end_other_sessions(b: &Browser) {
    let page = b.get("/account/security").await;
    let rows: Vec<&str> = page.body.split("<tr>").skip(2).collect();
    let others: Vec<String> = rows
        .iter()
        .filter(|r| !r.contains("this browser"))
        .filter_map(|r| field_value(r, "sid"))
        .collect();
    assert!(!others.is_empty(), "{}", page.body);
    for sid in others {
        let page = b.get("/account/security").await;
        let ended = b
            .post(
                "/account/security/sessions/end",
                &[("csrf", &page.csrf()), ("sid", &sid)],
            )
            .await;
        assert!(
            ended.body.contains("The session has ended."),
            "{}",
            ended.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_the_attackers_session_ends_his_approvals() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let id = pending_request(&srv).await;
        let c = approvals_app(&srv, None).await;
        let attacker = srv.browser();
        assert_eq!(attacker.login("dave", PASSWORD).await.status, 303);
        let offline = tokens(&srv, &attacker, &c, APPROVER).await;
        let online = tokens(&srv, &attacker, &c, "openid pim:approve").await;
        assert_eq!(introspect(&srv, &c, at(&online)).await["active"], true);
        assert_eq!(
            call(&srv, at(&offline), false, "/api/v1/approvals").await.0,
            200
        );

        let dave = srv.browser();
        assert_eq!(dave.login("dave", PASSWORD).await.status, 303);
        end_other_sessions(&dave).await;
        assert_eq!(attacker.get("/account").await.status, 303, "{backend:?}");

        // What the session issued for online use is revoked.
        assert_eq!(
            introspect(&srv, &c, at(&online)).await["active"],
            false,
            "{backend:?}"
        );
        assert_eq!(userinfo(&srv, at(&online)).await, 401);
        let (st, _) = call(&srv, at(&online), true, &format!("/api/v1/approvals/{id}")).await;
        assert_eq!(st, 401);

        // The offline grants refresh, but approve and administer no more.
        cannot_act_on_others(&srv, at(&offline), &id, "old token").await;
        let fresh = refreshed(&srv, &c, &offline).await;
        cannot_act_on_others(&srv, &fresh, &id, "refreshed").await;
        // The user's own PIM calls keep working for an offline grant.
        assert_eq!(
            call(&srv, &fresh, false, "/api/v1/me/elevations").await.0,
            200
        );
        still_pending(&srv, &id).await;

        // dave's own, live sign-in still approves through an app.
        let mine = tokens(&srv, &dave, &c, APPROVER).await;
        let (st, v) = call(&srv, at(&mine), true, &format!("/api/v1/approvals/{id}")).await;
        assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_what_the_session_issued_and_tells_the_app() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let rx = Receiver::start(0).await;
        let id = pending_request(&srv).await;
        let c = approvals_app(&srv, Some(&rx)).await;
        // An app dave used leaked its tokens; dave then signs out.
        let dave = srv.browser();
        assert_eq!(dave.login("dave", PASSWORD).await.status, 303);
        let offline = tokens(&srv, &dave, &c, APPROVER).await;
        let online = tokens(&srv, &dave, &c, "openid pim:approve").await;
        let page = dave.get("/account").await;
        let out = dave.post("/logout", &[("csrf", &page.csrf())]).await;
        assert_eq!(out.status, 303, "{}", out.body);

        assert_eq!(
            introspect(&srv, &c, at(&online)).await["active"],
            false,
            "{backend:?}"
        );
        assert_eq!(userinfo(&srv, at(&online)).await, 401);
        assert_eq!(introspect(&srv, &c, at(&offline)).await["active"], true);
        let fresh = refreshed(&srv, &c, &offline).await;
        cannot_act_on_others(&srv, &fresh, &id, "after /logout").await;
        still_pending(&srv, &id).await;
        let bcl = rx.wait_for(|x| x.path == "/bcl").await;
        assert!(bcl.body.starts_with("logout_token="), "{}", bcl.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_initiated_logout_ends_what_the_session_issued() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let id = pending_request(&srv).await;
        let c = approvals_app(&srv, None).await;
        let dave = srv.browser();
        assert_eq!(dave.login("dave", PASSWORD).await.status, 303);
        let offline = tokens(&srv, &dave, &c, APPROVER).await;
        let online = tokens(&srv, &dave, &c, "openid pim:approve").await;
        let url = portcullis::protocol::oidc::uri::with_query(
            &srv.url("/end-session"),
            &[("client_id", c.client.client_id.as_str())],
        );
        let confirm = dave.get_url(&url).await;
        let form = field_value(&confirm.body, "id").unwrap();
        dave.post(
            "/end-session/confirm",
            &[("csrf", &confirm.csrf()), ("id", &form)],
        )
        .await;
        assert_eq!(dave.get("/account").await.status, 303, "{backend:?}");

        assert_eq!(introspect(&srv, &c, at(&online)).await["active"], false);
        assert_eq!(userinfo(&srv, at(&online)).await, 401);
        let fresh = refreshed(&srv, &c, &offline).await;
        cannot_act_on_others(&srv, &fresh, &id, "after /end-session").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_session_ends_what_it_issued_once_noticed() {
    for backend in backends() {
        let mut env = TestEnv::new(backend);
        env.settings.session.idle_timeout = std::time::Duration::from_secs(120);
        let srv = TestServer::start_with(env).await;
        let id = pending_request(&srv).await;
        let c = approvals_app(&srv, None).await;
        let (one, two) = (srv.browser(), srv.browser());
        for b in [&one, &two] {
            assert_eq!(b.login("dave", PASSWORD).await.status, 303);
        }
        let offline = tokens(&srv, &one, &c, APPROVER).await;
        let online_one = tokens(&srv, &one, &c, "openid pim:approve").await;
        let online_two = tokens(&srv, &two, &c, "openid").await;
        srv.clock.advance(chrono::Duration::minutes(3));

        // Noticed when a token of the first session is used…
        assert_eq!(
            introspect(&srv, &c, at(&online_one)).await["active"],
            false,
            "{backend:?}"
        );
        // …and the end noticed there stays (it is not undone with the refusal).
        let audit = srv.services.recent_audit(50).await.unwrap();
        let timeouts = audit.iter().filter(|e| e.entry.action == "session.timeout");
        assert_eq!(timeouts.count(), 1, "{backend:?}: {audit:?}");
        let fresh = refreshed(&srv, &c, &offline).await;
        cannot_act_on_others(&srv, &fresh, &id, "after a timeout").await;
        assert_eq!(one.get("/account").await.status, 303);
        // …and by the upkeep for the second, which nobody used (and ada's).
        assert_eq!(srv.services.end_timed_out_sessions().await.unwrap(), 2);
        assert_eq!(introspect(&srv, &c, at(&online_two)).await["active"], false);
        assert_eq!(two.get("/account").await.status, 303);
        let audit = srv.services.recent_audit(50).await.unwrap();
        let timeouts = audit.iter().filter(|e| e.entry.action == "session.timeout");
        assert_eq!(timeouts.count(), 3, "{audit:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_a_session_leaves_the_users_other_sessions_alone() {
    let srv = TestServer::start(Backend::Embedded).await;
    let id = pending_request(&srv).await;
    let c = approvals_app(&srv, None).await;
    let (laptop, phone) = (srv.browser(), srv.browser());
    for b in [&laptop, &phone] {
        assert_eq!(b.login("dave", PASSWORD).await.status, 303);
    }
    let kept = tokens(&srv, &laptop, &c, "openid pim:approve").await;
    let lost = tokens(&srv, &phone, &c, "openid pim:approve").await;
    end_other_sessions(&laptop).await;
    assert_eq!(introspect(&srv, &c, at(&lost)).await["active"], false);
    assert_eq!(introspect(&srv, &c, at(&kept)).await["active"], true);
    let (st, v) = call(&srv, at(&kept), true, &format!("/api/v1/approvals/{id}")).await;
    assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saml_single_logout_ends_what_the_session_issued() {
    use crate::saml_slo::{A, logout_request, setup_on, sso};
    for backend in backends() {
        let srv = setup_on(backend).await;
        let c = approvals_app(&srv, None).await;
        let b = srv.browser();
        let (index, name_id) = sso(&srv, &b, A, "_s1").await;
        let offline = tokens(&srv, &b, &c, "openid offline_access").await;
        let online = tokens(&srv, &b, &c, "openid").await;
        let url = portcullis::protocol::oidc::uri::with_query(
            &srv.url("/saml/slo"),
            &[(
                "SAMLRequest",
                &crate::saml::deflated(&logout_request(&srv, A, "_lo9", &name_id, &index)),
            )],
        );
        b.get_url(&url).await;
        assert_eq!(b.get("/account").await.status, 303, "{backend:?}");

        assert_eq!(introspect(&srv, &c, at(&online)).await["active"], false);
        assert_eq!(userinfo(&srv, at(&online)).await, 401);
        refreshed(&srv, &c, &offline).await;
    }
}

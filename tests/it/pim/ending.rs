//! Ending a window early, revocation, expiry by the sweeper, disabling the
//! user: tokens go inactive, back-channel logout reaches the OIDC client and
//! the SAML SP that received elevated tokens, signed webhooks report each
//! step (with retries). And the CLI that scripts use.

use super::*;
use crate::common::{Backend, TestEnv, TestServer};
use chrono::Duration;
use portcullis::config::{Secret, WebhookSettings};
use portcullis::domain::UserStatus;
use portcullis::protocol::pim::webhook::verify;

const SECRET: &str = "a webhook secret of some length";

/// One webhook, to the receiver's `/hook`, for every event.
pub fn webhook_settings(hooks: &Receiver) -> Vec<WebhookSettings> {
    vec![WebhookSettings {
        url: format!("{}/hook", hooks.base),
        secret: Secret::new(SECRET),
        events: vec![],
    }]
}

async fn server_with_receiver(fail_first: usize) -> (TestServer, Receiver) {
    let hooks = Receiver::start(fail_first).await;
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.pim.sweep_interval = std::time::Duration::from_millis(100);
    env.settings.pim.webhooks = webhook_settings(&hooks);
    (TestServer::start_with(env).await, hooks)
}

/// The webhook for `event` about request `id`, its signature checked.
pub async fn webhook(r: &Receiver, event: &str, id: &Value) -> Value {
    let id = id.as_str().unwrap().to_string();
    let ev = event.to_string();
    let got = r
        .wait_for(move |x| {
            x.path == "/hook"
                && x.header("x-portcullis-event") == Some(ev.as_str())
                && x.body.contains(&id)
        })
        .await;
    let ts: i64 = got
        .header("x-portcullis-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let sig = got.header("x-portcullis-signature").unwrap();
    assert!(
        verify(SECRET.as_bytes(), ts, got.body.as_bytes(), sig),
        "bad signature"
    );
    assert!(!verify(
        b"another secret entirely",
        ts,
        got.body.as_bytes(),
        sig
    ));
    let tampered = format!("{} ", got.body);
    assert!(!verify(SECRET.as_bytes(), ts, tampered.as_bytes(), sig));
    serde_json::from_str(&got.body).unwrap()
}

fn count(r: &Receiver, path: &str) -> usize {
    r.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|x| x.path == path)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_revoking_and_expiry_reach_every_recipient() {
    let (srv, hooks) = server_with_receiver(0).await;
    let b = signed_in(&srv, "ada").await;
    privileged_role(&srv, open_policy(), "ada").await;
    let c = crate::pim::logout_receivers(&srv, &hooks, "payroll").await;

    // Early end by the user.
    let (_, q) = request(&b, 60, None).await;
    let requested = webhook(&hooks, "requested", &q["id"]).await;
    assert_eq!(requested["request"]["reason"], "month-end billing run");
    webhook(&hooks, "activated", &q["id"]).await;
    let t = tokens(&srv, &b, &c, "openid").await;
    let at = t["access_token"].as_str().unwrap().to_string();
    assert_eq!(introspect(&srv, &c, &at).await["active"], true);
    let page = b
        .get_url(&crate::saml::redirect_url(
            &srv,
            &crate::saml::authn_request(&srv, "_e1", ""),
            "r",
        ))
        .await;
    let (resp, _) = crate::saml::until_response(&b, page, "ada").await;
    assert!(crate::saml::decode(&resp).contains(ROLE));
    let (st, ended) = end_elevation(&b, &q["id"]).await;
    assert_eq!(
        (st, ended["state"].as_str()),
        (200, Some("ended")),
        "{ended}"
    );
    assert_eq!(introspect(&srv, &c, &at).await["active"], false);
    let bcl = hooks.wait_for(|x| x.path == "/bcl").await;
    assert!(bcl.body.starts_with("logout_token="));
    let soap = hooks.wait_for(|x| x.path == "/soap").await;
    assert!(soap.body.contains("LogoutRequest") && soap.body.contains("SignatureValue"));
    webhook(&hooks, "ended", &q["id"]).await;

    // Revocation by an administrator, through the API.
    let (_, q) = request(&b, 60, None).await;
    let t = tokens(&srv, &b, &c, "openid").await;
    let at = t["access_token"].as_str().unwrap().to_string();
    let revoke = |who: &Browser| {
        who.http
            .post(api(
                who,
                &format!("/api/v1/elevations/{}/revoke", q["id"].as_str().unwrap()),
            ))
            .json(&json!({"reason": "incident 42"}))
            .send()
    };
    let r = revoke(&b).await.unwrap();
    assert_eq!(r.status(), 403, "not an administrator");
    let admin = signed_in(&srv, "root").await;
    srv.services
        .create_group(&Actor::cli(), "admins", "")
        .await
        .ok();
    srv.services
        .set_membership(&Actor::cli(), "admins", "root", true)
        .await
        .unwrap();
    let open: Value = get_json(&admin, "/api/v1/elevations").await;
    assert_eq!(open["elevations"][0]["id"], q["id"], "{open}");
    let r = revoke(&admin).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["state"], "revoked");
    assert_eq!(v["closed_by"], "root");
    assert_eq!(introspect(&srv, &c, &at).await["active"], false);
    let revoked = webhook(&hooks, "revoked", &q["id"]).await;
    assert_eq!(revoked["request"]["close_reason"], "incident 42");
    for _ in 0..100 {
        if count(&hooks, "/bcl") >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count(&hooks, "/bcl"), 2);

    // ... and through the administrators' page, which others may not see.
    let (_, q3) = request(&b, 60, None).await;
    let id3 = q3["id"].as_str().unwrap();
    assert_eq!(b.get("/pim/admin").await.status, 403);
    let page = admin.get("/pim/admin").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(id3), "{}", page.body);
    let done = admin
        .post(
            &format!("/pim/admin/{id3}/revoke"),
            &[("csrf", &page.csrf()), ("reason", "audit finding")],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("billing-admin is revoked now"),
        "{}",
        done.body
    );
    webhook(&hooks, "revoked", &q3["id"]).await;

    // Expiry: the sweeper ends the window within seconds of its end.
    let (_, q) = request(&b, 1, None).await;
    tokens(&srv, &b, &c, "openid").await;
    srv.clock.advance(Duration::seconds(61));
    webhook(&hooks, "expired", &q["id"]).await;
    for _ in 0..100 {
        if count(&hooks, "/bcl") >= 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count(&hooks, "/bcl"), 3, "the expiry told the client too");

    // The audit trail links request, window, tokens and recipients.
    let audit = srv.services.recent_audit(300).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.entry.action.as_str()).collect();
    for a in [
        "pim.requested",
        "pim.activated",
        "pim.ended",
        "pim.revoked",
        "pim.window_ended",
        "pim.recipients_told",
    ] {
        assert!(actions.contains(&a), "{a} missing: {actions:?}");
    }
    let told = audit
        .iter()
        .find(|e| e.entry.action == "pim.recipients_told")
        .unwrap();
    assert!(
        told.entry.detail.to_string().contains("logout queued"),
        "{:?}",
        told.entry.detail
    );

    // Disabling the user ends the window and the eligibility at once.
    let (_, q) = request(&b, 60, None).await;
    srv.services
        .set_user_status(&Actor::cli(), "ada", UserStatus::Disabled)
        .await
        .unwrap();
    webhook(&hooks, "revoked", &q["id"]).await;
    let overview = srv.services.pim_overview().await.unwrap();
    assert_eq!(overview["eligibilities"], json!([]));
    assert_eq!(overview["requests"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_retried_with_backoff_and_logged() {
    let (srv, hooks) = server_with_receiver(1).await;
    let b = signed_in(&srv, "ada").await;
    privileged_role(&srv, open_policy(), "ada").await;
    let (_, q) = request(&b, 30, None).await;
    // The first attempt fails (500); the retry waits for its backoff.
    let mut failed = Vec::new();
    for _ in 0..200 {
        failed = srv
            .services
            .webhook_log(10)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.last_status == Some(500))
            .collect();
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].state, "pending");
    assert_eq!(failed[0].attempts, 1);
    let id = failed[0].id.clone();
    srv.clock.advance(Duration::seconds(11));
    let body_id = id.clone();
    let again = hooks.wait_for(move |x| x.body.contains(&body_id)).await;
    let _ = again;
    for _ in 0..100 {
        let log = srv.services.webhook_log(10).await.unwrap();
        if log.iter().any(|d| d.id == id && d.state == "delivered") {
            let d = log.iter().find(|d| d.id == id).unwrap();
            assert_eq!(d.attempts, 2);
            let received = hooks
                .seen
                .lock()
                .unwrap()
                .iter()
                .filter(|x| x.body.contains(&id))
                .count();
            assert_eq!(received, 2);
            webhook(&hooks, "requested", &q["id"]).await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "never delivered: {:?}",
        srv.services.webhook_log(10).await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sets_policies_and_eligibility_and_lists_json() {
    let env = TestEnv::new(Backend::Embedded);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config_for(dir.path(), &env);
    let srv = TestServer::start_with(env).await;
    srv.user("ada").await;
    srv.services
        .create_role(&Actor::cli(), ROLE, "")
        .await
        .unwrap();
    srv.services
        .set_role_assignment(&Actor::cli(), ROLE, "ada", true)
        .await
        .unwrap();
    let run = |args: &[&str]| crate::cli::run_cli(&config, args);
    // A permanently held role cannot become privileged, and a privileged
    // one cannot be held permanently.
    let (ok, _, err) = run(&["pim", "policy", "set", ROLE]);
    assert!(!ok && err.contains("is held permanently by ada"), "{err}");
    let (ok, _, err) = run(&["role", "unassign", ROLE, "ada"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "pim",
        "policy",
        "set",
        ROLE,
        "--max-duration",
        "2h",
        "--approval",
        "none",
        "--require-justification",
        "--require-mfa",
        "--window",
        "Mon-Fri 14:00-16:00 Europe/Berlin",
        "--network",
        "10.8.0.0/16",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&["role", "assign", ROLE, "ada"]);
    assert!(!ok && err.contains("cannot be held permanently"), "{err}");
    let (ok, _, err) = run(&[
        "pim",
        "policy",
        "set",
        ROLE,
        "--window",
        "Mon-Fri 16:00-14:00 UTC",
    ]);
    assert!(!ok);
    assert!(err.contains("end must be after its start"), "{err}");
    let (ok, _, err) = run(&["pim", "policy", "set", ROLE, "--approval", "group:nobody"]);
    assert!(!ok && err.contains("nobody"), "{err}");
    let (ok, _, err) = run(&[
        "pim",
        "eligible",
        "add",
        ROLE,
        "ada",
        "--until",
        "2026-12-31T00:00:00Z",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "client",
        "add",
        "--name",
        "ops",
        "--redirect-uri",
        "https://ops.example/cb",
        "--require-role",
        "not-a-role",
    ]);
    assert!(!ok && err.contains("there is no role not-a-role"), "{err}");
    let (ok, out, err) = run(&[
        "client",
        "add",
        "--name",
        "ops",
        "--redirect-uri",
        "https://ops.example/cb",
        "--require-role",
        ROLE,
        "--json",
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["required_role"],
        ROLE
    );
    let (ok, _, err) = run(&["pim", "eligible", "add", ROLE, "group:missing"]);
    assert!(!ok && err.contains("missing"), "{err}");
    let (ok, out, err) = run(&["pim", "list", "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let p = &v["policies"][0];
    assert_eq!(p["role"], ROLE);
    assert_eq!(p["max_duration_seconds"], 7200);
    assert_eq!(p["require_mfa"], true);
    assert_eq!(p["windows"], json!(["Mon-Fri 14:00-16:00 Europe/Berlin"]));
    assert_eq!(p["networks"], json!(["10.8.0.0/16"]));
    assert_eq!(v["eligibilities"][0]["principal"], "ada");
    assert_eq!(v["eligibilities"][0]["ends_at"], "2026-12-31T00:00:00Z");

    // A user's own request through the API, with a `pim` access token.
    let (ok, _, err) = run(&["pim", "policy", "set", ROLE, "--max-duration", "1h"]);
    assert!(ok, "{err}");
    let c = rp_client(&srv).await;
    let b = srv.browser();
    b.login("ada", PASSWORD).await;
    let t = tokens(&srv, &b, &c, "openid pim").await;
    let at = t["access_token"].as_str().unwrap();
    let base = srv.base.clone();
    let (ok, _, err) = run(&[
        "pim",
        "request",
        ROLE,
        "--duration",
        "2h",
        "--reason",
        "quarter close",
        "--url",
        &base,
        "--token",
        at,
    ]);
    assert!(!ok);
    assert!(
        err.contains("refused: the longest window for this role is 1h"),
        "{err}"
    );
    let (ok, out, err) = run(&[
        "pim",
        "request",
        ROLE,
        "--duration",
        "30m",
        "--reason",
        "quarter close",
        "--url",
        &base,
        "--token",
        at,
    ]);
    assert!(ok, "{err}");
    let q: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(q["state"], "active");
    assert_eq!(q["user"], "ada");
    // The API with that token: the request by ID; without the scope or a
    // token, clear refusals.
    let http = reqwest::Client::new();
    let one: Value = http
        .get(srv.url(&format!(
            "/api/v1/me/elevations/{}",
            q["id"].as_str().unwrap()
        )))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["reason"], "quarter close");
    let plain = tokens(&srv, &b, &c, "openid").await;
    let r = http
        .get(srv.url("/api/v1/me/eligibilities"))
        .bearer_auth(plain["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "insufficient_scope"
    );
    let r = http
        .get(srv.url("/api/v1/me/eligibilities"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer scope=\"pim\"");
    let r = http
        .get(srv.url("/api/v1/me/elevations/nope"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let issued = tokens(&srv, &b, &c, "openid").await;
    assert_eq!(
        claims(issued["id_token"].as_str().unwrap())["pim"][0]["activation"],
        q["id"]
    );
    let audit = srv.services.recent_audit(50).await.unwrap();
    let logged = audit
        .iter()
        .find(|e| e.entry.action == "pim.issued")
        .unwrap();
    assert_eq!(logged.entry.subject, q["id"].as_str().unwrap());
    assert_eq!(logged.entry.detail["recipient"], c.client.client_id);
}

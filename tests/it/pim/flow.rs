//! Approval (N approvers, nobody their own, a manager), risk-forced
//! approval, and privileged applications with the whole journey: refused,
//! request with a passkey step-up, approval, in, window ends, role gone.

use super::*;
use crate::common::{Backend, TestServer};
use crate::passkey::{data_attr, user_with_passkey};
use chrono::Duration;
use portcullis::service::directory::NewUser;
use portcullis::service::oidc::clients::ClientOptions;

async fn user_managed_by(srv: &TestServer, name: &str, manager: &str) {
    srv.services
        .create_user(
            &Actor::cli(),
            NewUser {
                username: name.into(),
                display_name: None,
                email: None,
                password: Some(PASSWORD.into()),
                must_change_password: false,
                manager: Some(manager.into()),
            },
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_need_n_approvers_never_oneself_or_the_manager() {
    let srv = TestServer::start(Backend::Embedded).await;
    let policy = PolicyInput {
        approval: Some("group:approvers:2".into()),
        ..open_policy()
    };
    let ada = signed_in(&srv, "ada").await;
    let bob = signed_in(&srv, "bob").await;
    let cy = signed_in(&srv, "cy").await;
    let dan = signed_in(&srv, "dan").await;
    group(&srv, "approvers", &["ada", "bob", "cy"]).await;
    privileged_role(&srv, policy, "ada").await;

    let (st, q) = request(&ada, 30, None).await;
    assert_eq!(st, 201, "{q}");
    assert_eq!(q["state"], "pending");
    assert_eq!(q["approval"], "group:approvers:2");

    let (st, e) = decide(&ada, &q["id"], "approve").await;
    assert_eq!(
        (st, e["error"].as_str()),
        (403, Some("self_approval")),
        "{e}"
    );
    assert_eq!(
        get_json(&ada, "/api/v1/approvals").await["approvals"],
        json!([])
    );
    let (st, e) = decide(&dan, &q["id"], "approve").await;
    assert_eq!((st, e["error"].as_str()), (403, Some("not_an_approver")));

    let waiting = get_json(&bob, "/api/v1/approvals").await;
    let item = &waiting["approvals"][0];
    assert_eq!(item["request"]["reason"], "month-end billing run");
    assert!(item["request"]["risk_score"].as_i64().is_some());
    assert!(item["history"].is_array());
    let (st, one) = decide(&bob, &q["id"], "approve").await;
    assert_eq!((st, one["state"].as_str()), (200, Some("pending")), "{one}");
    let (st, _) = decide(&bob, &q["id"], "approve").await;
    assert_eq!(st, 409, "one decision per approver");

    // The second approval, from the inbox page.
    let page = cy.get("/pim/approvals").await;
    assert!(
        page.body.contains("ada asks for billing-admin"),
        "{}",
        page.body
    );
    assert!(page.body.contains("class=\"risk\""));
    let done = cy
        .post(
            &format!("/pim/approvals/{}", q["id"].as_str().unwrap()),
            &[
                ("csrf", &page.csrf()),
                ("decision", "approve"),
                ("comment", "ok"),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body
            .contains("request for billing-admin is active now"),
        "{}",
        done.body
    );

    // A manager approves; someone else may not; a denial is final.
    user_managed_by(&srv, "eve", "bob").await;
    user_managed_by(&srv, "finn", "bob").await;
    srv.services
        .set_pim_policy(
            &Actor::cli(),
            ROLE,
            PolicyInput {
                approval: Some("manager".into()),
                ..open_policy()
            },
        )
        .await
        .unwrap();
    for u in ["eve", "finn"] {
        eligible(&srv, u).await;
    }
    let eve = srv.browser();
    eve.login("eve", PASSWORD).await;
    let (_, qe) = request(&eve, 30, None).await;
    assert_eq!(qe["approval"], "manager");
    let (st, _) = decide(&cy, &qe["id"], "approve").await;
    assert_eq!(st, 403);
    let (st, v) = decide(&bob, &qe["id"], "approve").await;
    assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
    let finn = srv.browser();
    finn.login("finn", PASSWORD).await;
    let (_, qf) = request(&finn, 30, None).await;
    let (st, v) = decide(&bob, &qf["id"], "deny").await;
    assert_eq!((st, v["state"].as_str()), (200, Some("denied")));
    assert_eq!(v["decisions"][0]["comment"], "checked the ticket");
    let (st, _) = decide(&cy, &qf["id"], "approve").await;
    assert_eq!(st, 403);

    let audit = srv.services.recent_audit(200).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.entry.action.as_str()).collect();
    for a in [
        "pim.requested",
        "pim.self_approval_refused",
        "pim.approval",
        "pim.activated",
        "pim.denied",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_risk_score_forces_approval_of_an_automatic_role() {
    let srv = TestServer::start(Backend::Embedded).await;
    let bob = signed_in(&srv, "bob").await;
    user_managed_by(&srv, "gus", "bob").await;
    privileged_role(&srv, open_policy(), "gus").await;
    let gus = srv.browser();
    for _ in 0..3 {
        assert_eq!(gus.login("gus", "wrong password!").await.status, 401);
    }
    assert_eq!(gus.login("gus", PASSWORD).await.status, 303);
    let (st, q) = request(&gus, 30, None).await;
    assert_eq!(st, 201, "{q}");
    assert_eq!(q["state"], "pending", "{q}");
    assert_eq!(q["approval"], "manager");
    assert!(q["risk_score"].as_i64().unwrap() >= 60, "{q}");
    assert!(
        q["risk_factors"].to_string().contains("3 failed sign-ins"),
        "{q}"
    );
    let (st, v) = decide(&bob, &q["id"], "approve").await;
    assert_eq!((st, v["state"].as_str()), (200, Some("active")));
}

fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
        .replace("&#38;", "&")
        .replace("&#x2f;", "/")
        .replace("&#47;", "/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_refused_request_step_up_approve_continue_expire() {
    let srv = TestServer::start(Backend::Embedded).await;
    let policy = PolicyInput {
        approval: Some("group:approvers".into()),
        require_mfa: true,
        require_justification: true,
        ..open_policy()
    };
    let (b, mut key) = user_with_passkey(&srv, "ada").await;
    let bob = signed_in(&srv, "bob").await;
    let mallory = signed_in(&srv, "mallory").await;
    group(&srv, "approvers", &["bob"]).await;
    privileged_role(&srv, policy, "ada").await;
    let mut d = draft("payroll-admin");
    d.scopes.push("pim".into());
    let opts = ClientOptions {
        consent_required: false,
        required_role: Some(ROLE.into()),
        ..ClientOptions::default()
    };
    let c = srv
        .services
        .create_client(&Actor::cli(), d, opts)
        .await
        .unwrap();
    let url = authorize_url(&srv, &c, &[("scope", "openid offline_access")]);

    // Ineligible: a plain refusal.
    let no = mallory.get_url(&url).await;
    assert_eq!(no.status, 403);
    assert!(
        no.body.contains("you are not eligible for it"),
        "{}",
        no.body
    );
    assert!(!no.body.contains("request-access"));

    // Eligible: refused, with the way to request.
    let gate = b.get_url(&url).await;
    assert_eq!(gate.status, 403, "{}", gate.body);
    assert!(gate.body.contains("Request access to billing-admin"));
    let link = unescape(&data_between(
        &gate.body,
        "id=\"request-access\" href=\"",
        "\"",
    ));
    assert!(
        link.starts_with("/pim/request?role=billing-admin&next="),
        "{link}"
    );

    // The request needs a fresh passkey: the form sends the user to check.
    let form = b.get(&link).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let next = crate::common::field_value(&form.body, "next").unwrap();
    let fields = |csrf: String| {
        vec![
            ("csrf".to_string(), csrf),
            ("role".into(), ROLE.into()),
            ("minutes".into(), "30".into()),
            ("reason".into(), "close the March books".into()),
            ("ticket".into(), String::new()),
            ("next".into(), unescape(&next)),
        ]
    };
    let f: Vec<(String, String)> = fields(form.csrf());
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let step = b.post("/pim/request", &pairs).await;
    assert_eq!(step.status, 303, "{}", step.body);
    let verify = step.location.unwrap();
    assert!(verify.starts_with("/account/verify?next="), "{verify}");
    let page = b.get(&verify).await;
    let csrf = data_attr(&page.body, "csrf");
    let back = unescape(&data_attr(&page.body, "next"));
    let (st, ch) = b
        .post_json("/webauthn/verify/start", &json!({"csrf": csrf}))
        .await;
    assert_eq!(st, 200, "{ch}");
    let cred = key.get(&ch["options"]);
    let (st, v) = b
        .post_json(
            "/webauthn/verify/finish",
            &json!({"csrf": csrf, "ceremony": ch["ceremony"], "credential": cred, "next": back}),
        )
        .await;
    assert_eq!(st, 200, "{v}");

    // Back at the form, filled in; now the request goes to the approver.
    let again = b.get(v["redirect"].as_str().unwrap()).await;
    assert!(again.body.contains("close the March books"));
    let f = fields(again.csrf());
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let sent = b.post("/pim/request", &pairs).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("waiting for approval"), "{}", sent.body);
    let continue_to = unescape(&data_between(&sent.body, "id=\"continue\" href=\"", "\""));
    let again = b.get_url(&url).await;
    assert_eq!(again.status, 403);
    assert!(
        again.body.contains("is waiting for approval"),
        "{}",
        again.body
    );

    let q = &get_json(&bob, "/api/v1/approvals").await["approvals"][0]["request"];
    let (st, v) = decide(&bob, &q["id"], "approve").await;
    assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");

    // The same sign-in continues to the application, with the role.
    let done = b.get(&continue_to).await;
    let loc = done.location.unwrap_or_else(|| panic!("{}", done.body));
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let (st, t) = redeem(&srv, &c, &param(&loc, "code").unwrap(), VERIFIER).await;
    assert_eq!(st, 200);
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["pim"][0]["role"], ROLE);
    assert!(id["roles"].to_string().contains(ROLE));

    // The window ends; so does the privileged app's grant, and the app
    // refuses again.
    srv.clock
        .advance(Duration::minutes(30) + Duration::seconds(1));
    let (st, r) = refresh(&srv, &c, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (st, r["error"].as_str()),
        (400, Some("invalid_grant")),
        "{r}"
    );
    assert_eq!(b.get_url(&url).await.status, 403);
}

fn data_between(html: &str, start: &str, end: &str) -> String {
    html.split(start)
        .nth(1)
        .and_then(|r| r.split(end).next())
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_privileged_sp_refuses_then_continues_once_the_window_is_active() {
    use crate::saml::{ACS, SP_ENTITY, authn_request, decode, redirect_url, until_response};
    use portcullis::service::saml::registry::SpInput;
    let srv = TestServer::start(Backend::Embedded).await;
    let b = signed_in(&srv, "ada").await;
    let mallory = signed_in(&srv, "mallory").await;
    privileged_role(&srv, open_policy(), "ada").await;
    srv.services
        .add_sp(
            &Actor::cli(),
            SpInput {
                entity_id: Some(SP_ENTITY.into()),
                acs_urls: vec![ACS.into()],
                sign_response: true,
                sign_assertion: true,
                required_role: Some(ROLE.into()),
                ..SpInput::default()
            },
        )
        .await
        .unwrap();
    let no = mallory
        .get_url(&redirect_url(&srv, &authn_request(&srv, "_m1", ""), "r"))
        .await;
    assert_eq!(no.status, 403);
    assert!(no.body.contains("you are not eligible for it"));

    let gate = b
        .get_url(&redirect_url(&srv, &authn_request(&srv, "_a1", ""), "r"))
        .await;
    assert_eq!(gate.status, 403, "{}", gate.body);
    let link = unescape(&data_between(
        &gate.body,
        "id=\"request-access\" href=\"",
        "\"",
    ));
    assert!(link.contains("next=%2Fsaml%2Fresume%3Ftx%3D"), "{link}");
    let form = b.get(&link).await;
    let next = unescape(&crate::common::field_value(&form.body, "next").unwrap());
    let sent = b
        .post(
            "/pim/request",
            &[
                ("csrf", &form.csrf()),
                ("role", ROLE),
                ("minutes", "15"),
                ("reason", "fix a broken invoice"),
                ("next", &next),
            ],
        )
        .await;
    // Auto-approved and active: straight back into the SAML sign-in.
    assert_eq!(sent.status, 303, "{}", sent.body);
    assert_eq!(sent.location.as_deref(), Some(next.as_str()));
    let page = b.get(&next).await;
    let (resp, relay) = until_response(&b, page, "ada").await;
    assert_eq!(relay.as_deref(), Some("r"));
    assert!(decode(&resp).contains(&format!(">{ROLE}</saml:AttributeValue>")));
}

//! A token does only what the user consented to: `pim` reaches the user's
//! own elevations and nothing else; approving and administering need
//! `pim:approve` and `pim:admin`, which dynamic registration refuses and the
//! consent page names. The inbox shows only history the approver may decide.

use super::*;
use crate::common::{Backend, TestServer, backends};
use crate::oidc::authorize_url;

/// Creates the group unless it exists (`admins` does), and adds members.
async fn group(srv: &TestServer, name: &str, members: &[&str]) {
    let _ = srv.services.create_group(&Actor::cli(), name, "").await;
    for m in members {
        srv.services
            .set_membership(&Actor::cli(), name, m, true)
            .await
            .unwrap();
    }
}

async fn client_with(srv: &TestServer, name: &str, scopes: &[&str]) -> NewClient {
    let mut d = draft(name);
    d.scopes.extend(scopes.iter().map(|s| s.to_string()));
    client(srv, d).await
}

fn approval(group: &str) -> PolicyInput {
    PolicyInput {
        approval: Some(format!("group:{group}:1")),
        ..open_policy()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pim_token_cannot_approve_or_administer() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let ada = signed_in(&srv, "ada").await;
        let bob = signed_in(&srv, "bob").await;
        group(&srv, "approvers", &["bob"]).await;
        group(&srv, "admins", &["bob"]).await;
        privileged_role(&srv, approval("approvers"), "ada").await;
        let (st, q) = request(&ada, 30, None).await;
        assert_eq!((st, q["state"].as_str()), (201, Some("pending")), "{q}");
        let id = q["id"].as_str().unwrap();

        // An app holding bob's `pim` token cannot be the second person.
        let c = rp_client(&srv).await;
        let t = tokens(&srv, &bob, &c, "openid pim").await;
        let at = t["access_token"].as_str().unwrap();
        for (post, path) in [
            (false, "/api/v1/approvals".to_string()),
            (true, format!("/api/v1/approvals/{id}")),
            (false, "/api/v1/elevations".to_string()),
            (true, format!("/api/v1/elevations/{id}/revoke")),
        ] {
            let (st, e) = call(&srv, at, post, &path).await;
            assert_eq!(
                (st, e["error"].as_str()),
                (403, Some("insufficient_scope")),
                "{backend:?} {path}: {e}"
            );
        }
        assert_eq!(call(&srv, at, false, "/api/v1/me/elevations").await.0, 200);
        let (_, mine) = call(&srv, at, false, &format!("/api/v1/me/elevations/{id}")).await;
        assert_eq!(mine["error"], "not_found", "not bob's request");

        // Scopes an administrator granted to an app, and bob consented to.
        let c = client_with(&srv, "approver-app", &["pim:approve", "pim:admin"]).await;
        let t = tokens(&srv, &bob, &c, "openid pim:approve").await;
        let at = t["access_token"].as_str().unwrap();
        assert_eq!(call(&srv, at, false, "/api/v1/me/elevations").await.0, 403);
        assert_eq!(call(&srv, at, false, "/api/v1/elevations").await.0, 403);
        let (st, inbox) = call(&srv, at, false, "/api/v1/approvals").await;
        assert_eq!(
            (st, inbox["approvals"][0]["request"]["id"].as_str()),
            (200, Some(id))
        );
        let (st, v) = call(&srv, at, true, &format!("/api/v1/approvals/{id}")).await;
        assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
        let t = tokens(&srv, &bob, &c, "openid pim:admin").await;
        let at = t["access_token"].as_str().unwrap();
        let (st, all) = call(&srv, at, false, "/api/v1/elevations").await;
        assert_eq!((st, all["elevations"][0]["id"].as_str()), (200, Some(id)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pim_scopes_are_named_on_consent_and_refused_to_dynamic_registration() {
    let srv = TestServer::start(Backend::Embedded).await;
    let mut d = draft("Approvals Bot");
    d.scopes
        .extend(["pim:approve".to_string(), "pim:admin".to_string()]);
    let c = srv
        .services
        .create_client(
            &Actor::cli(),
            d,
            portcullis::service::oidc::clients::ClientOptions::default(),
        )
        .await
        .unwrap();
    let b = signed_in(&srv, "ada").await;
    let page = b
        .get_url(&authorize_url(
            &srv,
            &c,
            &[("scope", "openid pim:approve pim:admin")],
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("Approve or deny other people"),
        "{}",
        page.body
    );
    assert!(page.body.contains("revoke everyone"), "{}", page.body);

    let token = srv
        .services
        .create_registration_token(&Actor::cli(), chrono::Duration::hours(1), 5)
        .await
        .unwrap();
    for scope in ["openid pim", "openid pim:approve", "openid pim:admin"] {
        let r = reqwest::Client::new()
            .post(srv.url("/register"))
            .bearer_auth(&token)
            .json(&json!({"redirect_uris": ["https://dyn.example/cb"], "scope": scope}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{scope}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_client_metadata", "{scope}: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_shows_only_history_the_approver_may_decide() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let ada = signed_in(&srv, "ada").await;
        let bob = signed_in(&srv, "bob").await;
        let cy = signed_in(&srv, "cy").await;
        group(&srv, "approvers", &["bob"]).await;
        group(&srv, "hr", &["cy"]).await;
        privileged_role(&srv, approval("approvers"), "ada").await;
        srv.services
            .create_role(&Actor::cli(), "hr-admin", "")
            .await
            .unwrap();
        srv.services
            .set_pim_policy(&Actor::cli(), "hr-admin", approval("hr"))
            .await
            .unwrap();
        srv.services
            .add_eligibility(
                &Actor::cli(),
                "hr-admin",
                Principal::User("ada".into()),
                None,
                None,
            )
            .await
            .unwrap();

        let (_, first) = request(&ada, 30, None).await;
        assert_eq!(end_elevation(&ada, &first["id"]).await.0, 200);
        let body = json!({"role": "hr-admin", "duration_seconds": 600,
                          "reason": "a confidential personnel matter", "ticket": "HR-77"});
        let (st, hr) = request_body(&ada, body, None).await;
        assert_eq!(st, 201, "{hr}");
        let r = cy
            .http
            .post(api(
                &cy,
                &format!("/api/v1/approvals/{}", hr["id"].as_str().unwrap()),
            ))
            .json(&json!({"decision": "deny", "comment": "see the HR file on the dispute"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let (st, q) = request(&ada, 30, None).await;
        assert_eq!(st, 201, "{q}");

        let inbox: Value = get_json(&bob, "/api/v1/approvals").await;
        let item = &inbox["approvals"][0];
        assert_eq!(item["request"]["id"], q["id"]);
        let history = item["history"].as_array().unwrap();
        assert_eq!(history.len(), 1, "{backend:?}: {item}");
        assert_eq!(history[0]["id"], first["id"]);
        for secret in ["confidential", "HR-77", "HR file", "hr-admin"] {
            assert!(!item.to_string().contains(secret), "{secret}: {item}");
        }
        let page = bob.get("/pim/approvals").await;
        assert!(!page.body.contains("confidential"), "{}", page.body);
    }
}

/// A 401 names the scope the route needs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_token_is_told_which_scope_the_route_needs() {
    let srv = TestServer::start(Backend::Embedded).await;
    for (path, scope) in [
        ("/api/v1/me/elevations", "pim"),
        ("/api/v1/approvals", "pim:approve"),
        ("/api/v1/elevations", "pim:admin"),
    ] {
        let r = reqwest::get(srv.url(path)).await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
        assert_eq!(
            r.headers()["www-authenticate"],
            format!("Bearer scope=\"{scope}\"").as_str(),
            "{path}"
        );
    }
}

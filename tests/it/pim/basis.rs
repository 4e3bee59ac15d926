//! Rule 7, privilege ends with its basis, attacked over HTTP: removal from
//! the group that made a user eligible ends their window at once (tokens,
//! introspection, back-channel logout) and withdraws their pending and
//! scheduled requests; issuance and approval re-check eligibility even
//! before anything ends a window; a late approval stops at the end of the
//! eligibility; approvers who left the group or were disabled no longer
//! count.

use super::*;
use crate::common::{TestEnv, TestServer, backends, t0};
use chrono::Duration;
use portcullis::domain::{GroupName, UserStatus};

/// A role with `policy`, for which members of `group` are eligible.
async fn group_role(srv: &TestServer, role: &str, policy: PolicyInput, group: &str) {
    srv.services
        .create_role(&Actor::cli(), role, "")
        .await
        .unwrap();
    srv.services
        .set_pim_policy(&Actor::cli(), role, policy)
        .await
        .unwrap();
    srv.services
        .add_eligibility(
            &Actor::cli(),
            role,
            Principal::Group(group.into()),
            None,
            None,
        )
        .await
        .unwrap();
}

async fn member(srv: &TestServer, group: &str, user: &str, yes: bool) {
    srv.services
        .set_membership(&Actor::cli(), group, user, yes)
        .await
        .unwrap();
}

async fn ask(b: &Browser, role: &str, minutes: i64, start: Option<String>) -> Value {
    let mut body = json!({"role": role, "duration_seconds": minutes * 60,
                          "reason": "month-end billing run"});
    if let Some(s) = start {
        body["start"] = json!(s);
    }
    let (st, q) = request_body(b, body, None).await;
    assert_eq!(st, 201, "{q}");
    q
}

async fn state_of(b: &Browser, id: &Value) -> String {
    let path = format!("/api/v1/me/elevations/{}", id.as_str().unwrap());
    let v = get_json(b, &path).await;
    v["state"].as_str().unwrap_or_default().to_string()
}

fn has_role(t: &Value, role: &str) -> bool {
    ["id_token", "access_token"].iter().any(|k| {
        let c = claims(t[*k].as_str().unwrap());
        c["roles"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r == role))
            || c["pim"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["role"] == role))
    })
}

fn approval_policy() -> PolicyInput {
    PolicyInput {
        approval: Some("group:approvers:1".into()),
        allow_scheduled: true,
        ..open_policy()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_eligible_group_ends_windows_and_withdraws_requests() {
    for backend in backends() {
        let hooks = Receiver::start(0).await;
        let srv = TestServer::start_with(TestEnv::new(backend)).await;
        let ada = signed_in(&srv, "ada").await;
        let bob = signed_in(&srv, "bob").await;
        group(&srv, "billing", &["ada"]).await;
        group(&srv, "approvers", &["bob"]).await;
        group_role(&srv, ROLE, open_policy(), "billing").await;
        group_role(&srv, "ledger-admin", approval_policy(), "billing").await;
        let scheduled = PolicyInput {
            allow_scheduled: true,
            ..open_policy()
        };
        group_role(&srv, "vault-admin", scheduled, "billing").await;
        let mut d = draft("payroll");
        d.backchannel_logout_uri = Some(format!("{}/bcl", hooks.base));
        let c = client(&srv, d).await;

        let active = ask(&ada, ROLE, 60, None).await;
        assert_eq!(active["state"], "active");
        let pending = ask(&ada, "ledger-admin", 60, None).await;
        assert_eq!(pending["state"], "pending");
        let later = (t0() + Duration::hours(1)).to_rfc3339();
        let sched = ask(&ada, "vault-admin", 60, Some(later)).await;
        assert_eq!(sched["state"], "approved", "{sched}");
        let t = tokens(&srv, &ada, &c, "openid").await;
        assert!(has_role(&t, ROLE), "{backend:?}");
        let at = t["access_token"].as_str().unwrap().to_string();

        member(&srv, "billing", "ada", false).await;

        // The active window ended: no role, the old token is dead, and the
        // client that received it was told.
        assert_eq!(
            state_of(&ada, &active["id"]).await,
            "revoked",
            "{backend:?}"
        );
        assert!(!has_role(&tokens(&srv, &ada, &c, "openid").await, ROLE));
        assert_eq!(introspect(&srv, &c, &at).await["active"], false);
        let bcl = hooks.wait_for(|x| x.path == "/bcl").await;
        assert!(bcl.body.starts_with("logout_token="));
        // The pending request is withdrawn and can no longer be approved.
        assert_eq!(state_of(&ada, &pending["id"]).await, "revoked");
        let (st, e) = decide(&bob, &pending["id"], "approve").await;
        assert_eq!(st, 409, "{e}");
        // The scheduled window never starts.
        assert_eq!(state_of(&ada, &sched["id"]).await, "revoked");
        srv.clock.advance(Duration::minutes(61));
        srv.services.pim_sweep().await.unwrap();
        let t = tokens(&srv, &ada, &c, "openid").await;
        assert!(!has_role(&t, "vault-admin") && !has_role(&t, ROLE));

        let audit = srv.services.recent_audit(200).await.unwrap();
        let revoked: Vec<_> = audit
            .iter()
            .filter(|e| e.entry.action == "pim.revoked")
            .collect();
        assert_eq!(revoked.len(), 3, "{backend:?}");
        assert!(
            revoked
                .iter()
                .all(|e| e.entry.detail["reason"] == "removed from the group billing")
        );
        assert!(
            audit
                .iter()
                .any(|e| e.entry.action == "pim.recipients_told")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_and_approval_recheck_eligibility_before_any_sweep() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let ada = signed_in(&srv, "ada").await;
        let bob = signed_in(&srv, "bob").await;
        group(&srv, "billing", &["ada"]).await;
        group(&srv, "approvers", &["bob"]).await;
        group_role(&srv, ROLE, open_policy(), "billing").await;
        group_role(&srv, "ledger-admin", approval_policy(), "billing").await;
        let c = rp_client(&srv).await;
        let active = ask(&ada, ROLE, 60, None).await;
        let pending = ask(&ada, "ledger-admin", 60, None).await;
        let t = tokens(&srv, &ada, &c, "openid").await;
        let at = t["access_token"].as_str().unwrap().to_string();
        assert!(has_role(&t, ROLE));

        // The membership goes behind the service's back (as a directory
        // sync might): nothing has ended the window yet.
        let store = srv.services.store.clone();
        tokio::task::spawn_blocking(move || {
            store.tx(|r| {
                let g = r
                    .group_by_name(&GroupName::parse("billing").unwrap())?
                    .unwrap();
                let ada = r
                    .user_by_username(&portcullis::domain::Username::parse("ada").unwrap())?
                    .unwrap();
                r.remove_member(&g, &ada.id)
            })
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(state_of(&ada, &active["id"]).await, "active");

        // Issuance and introspection re-check: no role, token inactive.
        let t = tokens(&srv, &ada, &c, "openid").await;
        assert!(!has_role(&t, ROLE), "{backend:?}");
        assert_eq!(introspect(&srv, &c, &at).await["active"], false);
        // The inbox no longer offers it; approval re-checks, refuses and
        // withdraws the request.
        let inbox: Value = get_json(&bob, "/api/v1/approvals").await;
        assert_eq!(inbox["approvals"], json!([]), "{backend:?}");
        let (st, e) = decide(&bob, &pending["id"], "approve").await;
        assert_eq!(
            (st, e["error"].as_str()),
            (403, Some("requester_not_eligible")),
            "{e}"
        );
        assert_eq!(state_of(&ada, &pending["id"]).await, "revoked");
        // And the sweeper ends the window.
        srv.services.pim_sweep().await.unwrap();
        assert_eq!(state_of(&ada, &active["id"]).await, "revoked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_approval_stops_at_the_end_of_eligibility() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let ada = signed_in(&srv, "ada").await;
        let bob = signed_in(&srv, "bob").await;
        group(&srv, "approvers", &["bob"]).await;
        srv.services
            .create_role(&Actor::cli(), ROLE, "")
            .await
            .unwrap();
        srv.services
            .set_pim_policy(&Actor::cli(), ROLE, approval_policy())
            .await
            .unwrap();
        let until = t0() + Duration::minutes(60);
        srv.services
            .add_eligibility(
                &Actor::cli(),
                ROLE,
                Principal::User("ada".into()),
                None,
                Some(until),
            )
            .await
            .unwrap();
        let q = ask(&ada, ROLE, 90, None).await;
        assert_eq!(q["ends_at"], json!(until), "{q}");
        srv.clock.advance(Duration::minutes(20));
        let (st, v) = decide(&bob, &q["id"], "approve").await;
        assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
        assert_eq!(v["ends_at"], json!(until), "{backend:?}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn votes_of_approvers_who_left_or_were_disabled_do_not_count() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let ada = signed_in(&srv, "ada").await;
        let bob = signed_in(&srv, "bob").await;
        let cy = signed_in(&srv, "cy").await;
        let dan = signed_in(&srv, "dan").await;
        let eve = signed_in(&srv, "eve").await;
        group(&srv, "approvers", &["bob", "cy", "dan", "eve"]).await;
        let policy = PolicyInput {
            approval: Some("group:approvers:2".into()),
            ..open_policy()
        };
        privileged_role(&srv, policy, "ada").await;

        // bob approves, then leaves the approving group.
        let q = ask(&ada, ROLE, 30, None).await;
        assert_eq!(decide(&bob, &q["id"], "approve").await.0, 200);
        member(&srv, "approvers", "bob", false).await;
        let (st, v) = decide(&cy, &q["id"], "approve").await;
        assert_eq!((st, v["state"].as_str()), (200, Some("pending")), "{v}");
        let (st, v) = decide(&dan, &q["id"], "approve").await;
        assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
        assert_eq!(end_elevation(&ada, &q["id"]).await.0, 200);

        // cy approves, then is disabled.
        let q = ask(&ada, ROLE, 30, None).await;
        assert_eq!(decide(&cy, &q["id"], "approve").await.0, 200);
        srv.services
            .set_user_status(&Actor::cli(), "cy", UserStatus::Disabled)
            .await
            .unwrap();
        let (st, v) = decide(&dan, &q["id"], "approve").await;
        assert_eq!((st, v["state"].as_str()), (200, Some("pending")), "{v}");
        let (st, v) = decide(&eve, &q["id"], "approve").await;
        assert_eq!((st, v["state"].as_str()), (200, Some("active")), "{v}");
    }
}

/// A scheduled window approved by someone who is then disabled, or leaves
/// the approving group, does not start: its approval no longer stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_window_needs_its_approvers_in_standing_when_it_starts() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        let ada = signed_in(&srv, "ada").await;
        let bob = signed_in(&srv, "bob").await;
        let cy = signed_in(&srv, "cy").await;
        group(&srv, "approvers", &["bob", "cy"]).await;
        privileged_role(&srv, approval_policy(), "ada").await;
        let c = rp_client(&srv).await;
        let start =
            (portcullis::clock::Clock::now(&*srv.clock) + Duration::minutes(10)).to_rfc3339();

        let by_bob = ask(&ada, ROLE, 30, Some(start.clone())).await;
        assert_eq!(decide(&bob, &by_bob["id"], "approve").await.0, 200);
        assert_eq!(state_of(&ada, &by_bob["id"]).await, "approved");
        srv.services
            .set_user_status(&Actor::cli(), "bob", UserStatus::Disabled)
            .await
            .unwrap();
        srv.clock.advance(Duration::minutes(11));
        // Before any sweep: issuance counts the votes again.
        let t = tokens(&srv, &ada, &c, "openid").await;
        assert!(
            !has_role(&t, ROLE),
            "{backend:?}: bob's vote no longer counts"
        );
        srv.services.pim_sweep().await.unwrap();
        assert_ne!(state_of(&ada, &by_bob["id"]).await, "active", "{backend:?}");

        let start =
            (portcullis::clock::Clock::now(&*srv.clock) + Duration::minutes(10)).to_rfc3339();
        let by_cy = ask(&ada, ROLE, 30, Some(start)).await;
        assert_eq!(decide(&cy, &by_cy["id"], "approve").await.0, 200);
        member(&srv, "approvers", "cy", false).await;
        srv.clock.advance(Duration::minutes(11));
        srv.services.pim_sweep().await.unwrap();
        assert_ne!(state_of(&ada, &by_cy["id"]).await, "active", "{backend:?}");
        let t = tokens(&srv, &ada, &c, "openid").await;
        assert!(!has_role(&t, ROLE), "{backend:?}: cy left the group");
    }
}

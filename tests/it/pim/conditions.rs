//! Policy conditions over HTTP: justification, tickets, maximum duration,
//! concurrency, group eligibility, scheduled windows that start by
//! themselves, undecided requests that expire, and removed eligibility.

use super::*;
use crate::common::{Backend, TestEnv, TestServer};
use crate::pim::ending::{webhook, webhook_settings};
use chrono::Duration;

fn body(reason: &str, minutes: i64, ticket: Option<&str>, start: Option<String>) -> Value {
    json!({"role": ROLE, "duration_seconds": minutes * 60, "reason": reason,
           "ticket": ticket, "start": start})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_refuse_clearly_and_windows_start_and_expire_by_themselves() {
    let hooks = Receiver::start(0).await;
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.pim.sweep_interval = std::time::Duration::from_millis(100);
    env.settings.pim.webhooks = webhook_settings(&hooks);
    let srv = TestServer::start_with(env).await;
    let ada = signed_in(&srv, "ada").await;
    let bob = signed_in(&srv, "bob").await;
    let carol = signed_in(&srv, "carol").await;
    srv.services
        .create_group(&Actor::cli(), "finance", "")
        .await
        .unwrap();
    for m in ["ada", "bob"] {
        srv.services
            .set_membership(&Actor::cli(), "finance", m, true)
            .await
            .unwrap();
    }
    let policy = PolicyInput {
        require_justification: true,
        ticket_required: true,
        ticket_pattern: Some("OPS-[0-9]+".into()),
        max_concurrent: Some(1),
        allow_scheduled: true,
        ..open_policy()
    };
    privileged_role(&srv, policy, "carol").await;
    srv.services
        .add_eligibility(
            &Actor::cli(),
            ROLE,
            Principal::Group("finance".into()),
            None,
            None,
        )
        .await
        .unwrap();
    let good = "rotate the payment provider keys";

    for (b, code, text) in [
        (
            body("short", 30, Some("OPS-1"), None),
            "reason_missing",
            "at least 10",
        ),
        (body(good, 30, None, None), "ticket_missing", "ticket"),
        (
            body(good, 30, Some("JIRA-1"), None),
            "ticket_malformed",
            "ticket",
        ),
        (
            body(good, 180, Some("OPS-1"), None),
            "duration_too_long",
            "the longest window for this role is 2h",
        ),
        // Out of any calendar's range: refused, never a server error.
        (
            body(good, i64::MAX / 60, Some("OPS-1"), None),
            "duration_too_long",
            "2h",
        ),
        (
            body(good, -5, Some("OPS-1"), None),
            "duration_not_positive",
            "",
        ),
    ] {
        let (st, e) = request_body(&ada, b, None).await;
        assert_eq!((st, e["error"].as_str()), (403, Some(code)), "{e}");
        assert!(
            e["error_description"].as_str().unwrap().contains(text),
            "{e}"
        );
    }

    // Group eligibility; at most one window at a time.
    let (st, q) = request_body(&ada, body(good, 30, Some("OPS-7"), None), None).await;
    assert_eq!((st, q["state"].as_str()), (201, Some("active")), "{q}");
    let (st, e) = request_body(&bob, body(good, 30, Some("OPS-8"), None), None).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (403, Some("too_many_active")),
        "{e}"
    );
    let (st, e) = request_body(&ada, body(good, 30, Some("OPS-7"), None), None).await;
    assert_eq!(st, 409, "one open request per role: {e}");

    // A scheduled window after ada's: approved now, active by itself later.
    let later = (crate::common::t0() + Duration::hours(1)).to_rfc3339();
    let (st, s) = request_body(&bob, body(good, 30, Some("OPS-8"), Some(later)), None).await;
    assert_eq!((st, s["state"].as_str()), (201, Some("approved")), "{s}");
    srv.clock.advance(Duration::hours(1));
    webhook(&hooks, "expired", &q["id"]).await;
    webhook(&hooks, "activated", &s["id"]).await;
    let mine = get_json(&bob, "/api/v1/me/elevations").await;
    assert_eq!(mine["elevations"][0]["state"], "active", "{mine}");

    // Removing carol's eligibility ends her window with it.
    let (st, c) = request_body(&carol, body(good, 30, Some("OPS-9"), None), None).await;
    assert_eq!(st, 403, "bob holds the one window: {c}");
    let (_, e) = request_body(&bob, json!({}), None).await;
    assert_eq!(e["error"], "invalid_request", "a body missing fields: {e}");
    assert_eq!(end_elevation(&bob, &s["id"]).await.0, 200);
    let (st, c) = request_body(&carol, body(good, 30, Some("OPS-9"), None), None).await;
    assert_eq!((st, c["state"].as_str()), (201, Some("active")), "{c}");
    let overview = srv.services.pim_overview().await.unwrap();
    let carols = overview["eligibilities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["principal"] == "carol")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    srv.services
        .remove_eligibility(&Actor::cli(), &carols)
        .await
        .unwrap();
    let revoked = webhook(&hooks, "revoked", &c["id"]).await;
    assert_eq!(
        revoked["request"]["close_reason"],
        "the eligibility was removed"
    );

    // A request nobody decides on expires.
    srv.services
        .set_pim_policy(
            &Actor::cli(),
            ROLE,
            PolicyInput {
                approval: Some("group:finance".into()),
                ..open_policy()
            },
        )
        .await
        .unwrap();
    let (st, p) = request_body(&ada, body(good, 30, None, None), None).await;
    assert_eq!((st, p["state"].as_str()), (201, Some("pending")), "{p}");
    let (st, e) = request_body(
        &bob,
        body(
            good,
            30,
            None,
            Some((crate::common::t0() + Duration::days(2)).to_rfc3339()),
        ),
        None,
    )
    .await;
    assert_eq!(
        (st, e["error"].as_str()),
        (403, Some("scheduled_not_allowed")),
        "{e}"
    );
    srv.clock.advance(Duration::hours(24));
    webhook(&hooks, "expired", &p["id"]).await;
    assert_eq!(ada.login("ada", PASSWORD).await.status, 303, "a day later");
    let mine = get_json(&ada, "/api/v1/me/elevations").await;
    assert_eq!(mine["elevations"][0]["state"], "expired", "{mine}");
    assert_eq!(mine["elevations"][0]["close_reason"], "no decision in time");
}

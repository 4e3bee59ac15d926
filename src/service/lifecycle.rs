//! Cutting a user's access everywhere (disable, administrative password
//! reset, and — sparing the session it happens in — the user's own password
//! change): every session ends, every grant and refresh token is revoked, and
//! the applications that got something from those sessions are told.
//!
//! Everything happens in the caller's transaction ([`cut_access_in`]),
//! including telling downstream ([`queue_downstream`], the one place that
//! does): the notices go into the outbox with the change, and a running
//! server delivers them.

use super::outbox;
use crate::domain::UserId;
use crate::error::Result;
use crate::store::Repo;
use chrono::{DateTime, Utc};

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
    /// How many logout notices were queued.
    pub notices: usize,
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
    let mut cut = CutAccess {
        user_id: user.to_string(),
        sessions,
        grants_revoked,
        notices: 0,
    };
    cut.notices = queue_downstream(r, now, &cut)?;
    Ok(cut)
}

/// Queues, in the caller's transaction, a back-channel logout to every OIDC
/// client and a SOAP LogoutRequest to every SAML service provider that
/// received something in the ended sessions; how many were queued.
pub(crate) fn queue_downstream(
    r: &mut dyn Repo,
    now: DateTime<Utc>,
    cut: &CutAccess,
) -> Result<usize> {
    let mut queued = 0;
    for s in &cut.sessions {
        for c in &s.clients {
            queued += usize::from(outbox::queue_backchannel_logout(
                r,
                now,
                c,
                &s.digest,
                &cut.user_id,
            )?);
        }
        for (entity, name_id, index) in &s.saml {
            queued += usize::from(outbox::queue_saml_soap_logout(
                r, now, entity, name_id, index,
            )?);
        }
    }
    Ok(queued)
}

//! Cutting a user's access everywhere (disable, administrative password
//! reset, and — sparing the session it happens in — the user's own password
//! change): every session ends, every grant and refresh token is revoked, and
//! the applications that got something from those sessions are told.
//!
//! Everything happens in the caller's transaction ([`cut_access_in`]),
//! including telling downstream ([`queue_downstream`], the one place that
//! does): the notices go into the outbox with the change, and a running
//! server delivers them.
//!
//! Ending one session, however it ends (sign-out, RP-initiated logout, the
//! security page, SAML single logout, a timeout once noticed), is
//! [`end_session_in`]: what the session issued ends with it, but for the
//! grants the user gave for offline use.

use super::{Services, outbox};
use crate::domain::{Grant, GrantType, Session, UserId};
use crate::error::{Error, ErrorKind, Result};
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
        let clients = distinct_clients(&r.grants_of_session(&s.id_digest)?);
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
    // An invitation link that leaked would otherwise outlive the cut (and
    // come back to life when a disabled user is enabled again).
    r.void_invites_of(user, now)?;
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

/// The clients that hold `grants`, each once.
fn distinct_clients(grants: &[Grant]) -> Vec<String> {
    let mut clients: Vec<String> = grants.iter().map(|g| g.client_id.clone()).collect();
    clients.sort();
    clients.dedup();
    clients
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

/// What [`end_session_in`] did.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionEnded {
    pub grants_revoked: u64,
    /// How many back-channel logouts were queued.
    pub notices: usize,
}

/// Ends one browser session, in the caller's transaction: the session is
/// removed, every grant issued in it is revoked — but those holding
/// `offline_access`, which the user granted to outlive the session — and the
/// OIDC clients that received something in it are told by back-channel
/// logout (SAML service providers are told by the single-logout flows).
/// Every way a session ends comes through here: sign-out, RP-initiated
/// logout, ending it from the security page, SAML SLO, and a timeout when
/// it is noticed.
pub(crate) fn end_session_in(
    r: &mut dyn Repo,
    digest: &str,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<SessionEnded> {
    let grants = r.grants_of_session(digest)?;
    let clients = distinct_clients(&grants);
    r.delete_session(digest)?;
    let mut grants_revoked = 0;
    for g in &grants {
        if !survives_session(r, g)? {
            r.revoke_grant(&g.id, now)?;
            grants_revoked += 1;
        }
    }
    let ended = CutAccess {
        user_id: user_id.to_string(),
        sessions: vec![EndedSession {
            digest: digest.to_string(),
            clients,
            saml: Vec::new(),
        }],
        grants_revoked,
        notices: 0,
    };
    let notices = queue_downstream(r, now, &ended)?;
    Ok(SessionEnded {
        grants_revoked,
        notices,
    })
}

/// Whether a grant outlives the session it was issued in: the user granted
/// it for offline use (`offline_access`, to a client that may refresh).
pub(crate) fn survives_session(r: &mut dyn Repo, g: &Grant) -> Result<bool> {
    if !g.scope.iter().any(|s| s == "offline_access") {
        return Ok(false);
    }
    Ok(r.client(&g.client_id)?
        .is_some_and(|c| c.allows_grant(GrantType::RefreshToken)))
}

/// The session `digest` if it is still alive at `now` (not past its
/// absolute end, not idle for `idle` or longer); one found timed out is
/// ended here, as a sign-out would end it.
pub(crate) fn live_session_in(
    r: &mut dyn Repo,
    digest: &str,
    now: DateTime<Utc>,
    idle: chrono::Duration,
) -> Result<Option<Session>> {
    let Some(s) = r.session(digest)? else {
        return Ok(None);
    };
    if s.expires_at > now && s.last_seen_at + idle > now {
        return Ok(Some(s));
    }
    end_timed_out_in(r, &s, now)?;
    Ok(None)
}

/// Ends a session found past its time (or without an active user) with
/// [`end_session_in`], and audits it as `session.timeout`.
pub(crate) fn end_timed_out_in(r: &mut dyn Repo, s: &Session, now: DateTime<Utc>) -> Result<()> {
    let e = end_session_in(r, &s.id_digest, s.user_id.as_str(), now)?;
    let subject = match r.user_by_id(&s.user_id)? {
        Some(u) => u.username.to_string(),
        None => s.user_id.to_string(),
    };
    let detail = json!({"grants_revoked": e.grants_revoked, "logouts_queued": e.notices});
    super::record(
        r,
        now,
        &super::Actor::system(),
        "session.timeout",
        &subject,
        detail,
    )
}

/// Why a token cannot act for others once its sign-in is over.
const SIGN_IN_ENDED: &str = "the sign-in this token was granted in has ended";

/// `invalid_token`: the session a token was granted in has ended.
pub(crate) fn sign_in_ended() -> Error {
    Error::oauth(ErrorKind::Unauthenticated, "invalid_token", SIGN_IN_ENDED)
}

impl Services {
    /// `session.idle_timeout` as a duration.
    pub(crate) fn idle_timeout(&self) -> Result<chrono::Duration> {
        chrono::Duration::from_std(self.settings.session.idle_timeout)
            .map_err(|e| Error::internal(e.to_string()))
    }

    /// Ends, as a sign-out would, sessions that timed out while nobody
    /// looked (background upkeep); how many.
    pub async fn end_timed_out_sessions(&self) -> Result<u64> {
        let (now, idle) = (self.now(), self.idle_timeout()?);
        self.db(move |r| {
            let ended = r.timed_out_sessions(now, now - idle, 500)?;
            for s in &ended {
                end_timed_out_in(r, s, now)?;
            }
            Ok(ended.len() as u64)
        })
        .await
    }
}

//! Password sign-in, browser sessions and password changes (throttling is
//! in `throttle.rs`).

use super::throttle::{account_key, ip_key, locked};
use super::{Actor, Services, record};
use crate::crypto::password::{hash_password_in, verify_against_dummy, verify_password_in};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{PasswordCredential, Session, User, Username};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::lifecycle::{one_time_password_expired, password_change_only};
use crate::protocol::login::{ThrottleDecision, check_password_policy};
use serde_json::json;

/// What every failed password sign-in says, whatever the reason, so that the
/// answer does not reveal which usernames exist.
pub const BAD_CREDENTIALS: &str = "Incorrect username or password.";

/// How a sign-in attempt ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Success,
    BadCredentials,
    Throttled,
    Disabled,
}

impl LoginOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BadCredentials => "bad_credentials",
            Self::Throttled => "throttled",
            Self::Disabled => "disabled",
        }
    }
}

/// What a session opened with a one-time password gets for anything but
/// choosing a new password.
pub fn password_change_required() -> Error {
    Error::oauth(
        ErrorKind::Forbidden,
        PASSWORD_CHANGE_REQUIRED,
        "Choose a new password before going on.",
    )
}

/// The error code of [`password_change_required`].
pub const PASSWORD_CHANGE_REQUIRED: &str = "password_change_required";

/// A new browser session; `token` goes into the cookie and nowhere else.
#[derive(Debug)]
pub struct SignedIn {
    pub token: String,
    pub user: User,
    pub must_change_password: bool,
}

/// A correct password: either the session, or a second factor still due.
#[derive(Debug)]
pub enum PasswordOk {
    Session(SignedIn),
    /// Show the second-factor form with this pending token.
    NeedsSecondFactor {
        pending: String,
        factors: super::mfa::MfaStatus,
    },
}

/// A failed attempt: the outcome for metrics and the error for the user.
#[derive(Debug)]
pub struct LoginFailure {
    pub outcome: LoginOutcome,
    pub error: Error,
}

/// Client details recorded with a session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Services {
    /// A sign-in with a name no account can have: counted against the
    /// address (so a flood of them ends in a lock), and recorded once per
    /// lock period under a fixed actor, never with the name sent.
    async fn refuse_malformed_name(&self, ip: &str, client: &ClientInfo) -> LoginFailure {
        let result = async {
            if let ThrottleDecision::Locked { retry_after } = self.throttle_decision("", ip).await?
            {
                return Ok(LoginFailure {
                    outcome: LoginOutcome::Throttled,
                    error: locked(retry_after),
                });
            }
            self.ephemeral
                .incr(&ip_key(ip), self.settings.login.lockout)
                .await?;
            let actor = Actor::user("(malformed username)", client.ip.clone());
            self.note_once(
                &format!("malformed:{ip}"),
                actor,
                "login.refused",
                String::new(),
            )
            .await?;
            Ok(LoginFailure {
                outcome: LoginOutcome::BadCredentials,
                // The same answer as a wrong password: nothing to tell apart.
                error: Error::new(ErrorKind::Unauthenticated, BAD_CREDENTIALS),
            })
        };
        result.await.unwrap_or_else(|e: Error| LoginFailure {
            outcome: LoginOutcome::BadCredentials,
            error: e,
        })
    }

    /// Records `action` at most once per lockout period for `key`, so a
    /// flood of refused attempts cannot grow the audit trail without bound.
    async fn note_once(
        &self,
        key: &str,
        actor: Actor,
        action: &'static str,
        subject: String,
    ) -> Result<()> {
        let first = self
            .ephemeral
            .put_if_absent(
                &format!("noted:{}", crate::crypto::sha256_hex(key.as_bytes())),
                b"1",
                self.settings.login.lockout,
            )
            .await?;
        if first {
            let now = self.now();
            self.db(move |r| record(r, now, &actor, action, &subject, json!({})))
                .await?;
        }
        Ok(())
    }

    /// Checks a username and password and, when they match an active account,
    /// opens a new session.
    pub async fn login_password(
        &self,
        username: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<PasswordOk, LoginFailure> {
        let fail = |outcome, error| LoginFailure { outcome, error };
        let internal = |e: Error| fail(LoginOutcome::BadCredentials, e);
        let ip = client.ip.clone().unwrap_or_else(|| "unknown".into());
        // Bounded before any lookup, counter or record: a name outside the
        // grammar never reaches the store or the audit trail.
        let Ok(name) = Username::parse(username) else {
            return Err(self.refuse_malformed_name(&ip, client).await);
        };
        let name_key = name.as_str().to_string();
        let actor = Actor::user(&name_key, client.ip.clone());

        if let ThrottleDecision::Locked { retry_after } = self
            .throttle_decision(&name_key, &ip)
            .await
            .map_err(internal)?
        {
            let (a, subject) = (actor.clone(), name_key.clone());
            self.note_once(
                &format!("throttled:{ip}:{name_key}"),
                a,
                "login.throttled",
                subject,
            )
            .await
            .map_err(internal)?;
            return Err(fail(LoginOutcome::Throttled, locked(retry_after)));
        }

        if let ThrottleDecision::Locked { retry_after } = self
            .reserve_attempt(&name_key, &ip)
            .await
            .map_err(internal)?
        {
            return Err(fail(LoginOutcome::Throttled, locked(retry_after)));
        }

        let found = self
            .db(move |r| {
                let Some(user) = r.user_by_username(&name)? else {
                    return Ok(None);
                };
                let cred = r.password(&user.id)?;
                Ok(Some((user, cred)))
            })
            .await
            .map_err(internal)?;

        let pw = password.to_string();
        let (user, cred) = match found {
            Some((user, Some(cred))) => {
                let phc = cred.hash.clone();
                let ok = self
                    .hashing(move |m| verify_password_in(m, &pw, &phc))
                    .await
                    .map_err(internal)?;
                if ok {
                    self.release_attempt(&name_key, &ip)
                        .await
                        .map_err(internal)?;
                    (Some(user), Some(cred))
                } else {
                    (None, None)
                }
            }
            _ => {
                // Same cost as a real check, so timing does not tell.
                self.hashing(move |m| verify_against_dummy(m, &pw))
                    .await
                    .map_err(internal)?;
                (None, None)
            }
        };

        let now = self.now();
        let (Some(user), Some(cred)) = (user, cred) else {
            // Counted already, before the check.
            let (a, subject) = (actor.clone(), name_key.clone());
            self.db(move |r| {
                record(
                    r,
                    now,
                    &a,
                    "login.failure",
                    &subject,
                    json!({"method": "pwd"}),
                )
            })
            .await
            .map_err(internal)?;
            return Err(fail(
                LoginOutcome::BadCredentials,
                Error::new(ErrorKind::Unauthenticated, BAD_CREDENTIALS),
            ));
        };

        if !user.is_active() {
            let (a, subject) = (actor.clone(), name_key.clone());
            self.db(move |r| record(r, now, &a, "login.disabled", &subject, json!({})))
                .await
                .map_err(internal)?;
            return Err(fail(
                LoginOutcome::Disabled,
                Error::forbidden("This account is disabled. Contact your administrator."),
            ));
        }

        if cred.must_change && one_time_password_expired(cred.updated_at, now) {
            let (a, subject) = (actor.clone(), name_key.clone());
            self.db(move |r| {
                record(
                    r,
                    now,
                    &a,
                    "login.one_time_password_expired",
                    &subject,
                    json!({}),
                )
            })
            .await
            .map_err(internal)?;
            return Err(fail(
                LoginOutcome::BadCredentials,
                Error::new(
                    ErrorKind::Unauthenticated,
                    "This one-time password has expired. Ask your administrator for a new one.",
                ),
            ));
        }

        // With a second factor enrolled the password alone opens nothing, and
        // the failure counter keeps counting until the second factor passes.
        let factors = self.mfa_status(&user).await.map_err(internal)?;
        if factors.has_second_factor() {
            let pending = self
                .start_second_factor(&user, &cred)
                .await
                .map_err(internal)?;
            return Ok(PasswordOk::NeedsSecondFactor { pending, factors });
        }
        self.ephemeral
            .delete(&account_key(&name_key))
            .await
            .map_err(internal)?;
        let token = self
            .open_session(&user, vec!["pwd".into()], client, &actor)
            .await
            .map_err(internal)?;
        Ok(PasswordOk::Session(SignedIn {
            token,
            user,
            must_change_password: cred.must_change,
        }))
    }

    /// Creates a session for `user` and returns the cookie value.
    pub(super) async fn open_session(
        &self,
        user: &User,
        amr: Vec<String>,
        client: &ClientInfo,
        actor: &Actor,
    ) -> Result<String> {
        let now = self.now();
        let token = random_token();
        let absolute = chrono::Duration::from_std(self.settings.session.absolute_timeout)
            .map_err(|e| Error::internal(e.to_string()))?;
        let session = Session {
            id_digest: sha256_hex(token.as_bytes()),
            user_id: user.id.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + absolute,
            auth_time: now,
            amr: amr.clone(),
            ip: client.ip.clone(),
            user_agent: client
                .user_agent
                .as_ref()
                .map(|u| u.chars().take(256).collect()),
            factors: crate::protocol::webauthn::initial_factors(&amr, now),
        };
        let (actor, subject) = (actor.clone(), user.username.to_string());
        self.db(move |r| {
            r.insert_session(&session)?;
            record(
                r,
                now,
                &actor,
                "login.success",
                &subject,
                json!({"amr": session.amr}),
            )
        })
        .await?;
        Ok(token)
    }

    /// The live session and its user for a cookie value, sliding the idle
    /// timeout. Expired, idle or orphaned sessions are removed and yield `None`.
    /// A session opened with a one-time password is refused with
    /// [`password_change_required`]: it may only choose a new password.
    pub async fn session_for(&self, token: &str) -> Result<Option<(Session, User)>> {
        match self.lookup_session(token).await? {
            Some((_, _, true)) => Err(password_change_required()),
            Some((s, u, false)) => Ok(Some((s, u))),
            None => Ok(None),
        }
    }

    /// Like [`Self::session_for`], but also a session that may only change
    /// the password: for the password pages and signing out.
    pub async fn session_for_password_change(
        &self,
        token: &str,
    ) -> Result<Option<(Session, User)>> {
        Ok(self.lookup_session(token).await?.map(|(s, u, _)| (s, u)))
    }

    /// The session, its user, and whether it may only change the password.
    /// Such a session ends with its one-time password's lifetime.
    async fn lookup_session(&self, token: &str) -> Result<Option<(Session, User, bool)>> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        let digest = sha256_hex(token.as_bytes());
        let now = self.now();
        let idle = self.idle_timeout()?;
        self.db(move |r| {
            let Some(s) = r.session(&digest)? else {
                return Ok(None);
            };
            let user = r.user_by_id(&s.user_id)?;
            let mut alive = s.expires_at > now && s.last_seen_at + idle > now;
            let mut restricted = false;
            if let Some(u) = &user
                && let Some(c) = r.password(&u.id)?.filter(|c| c.must_change)
                && password_change_only(&s.amr, true)
            {
                restricted = true;
                alive &= !one_time_password_expired(c.updated_at, now);
            }
            match user {
                Some(u) if alive && u.is_active() => {
                    // Write at most once a minute per session.
                    if now - s.last_seen_at >= chrono::Duration::seconds(60) {
                        r.touch_session(&digest, now)?;
                    }
                    Ok(Some((s, u, restricted)))
                }
                _ => {
                    // Timed out (or its user is gone): it ends as a sign-out would.
                    crate::service::lifecycle::end_timed_out_in(r, &s, now)?;
                    Ok(None)
                }
            }
        })
        .await
    }

    /// Ends the session behind a cookie value, if any.
    pub async fn logout(&self, token: &str, ip: Option<String>) -> Result<()> {
        let Some((session, user)) = self.session_for_password_change(token).await? else {
            return Ok(());
        };
        self.end_session(&session.id_digest, &user, ip, "logout")
            .await
    }

    /// The cookie value's session digest, for callers that must act on the
    /// session after it is gone (single logout).
    pub fn session_digest(token: &str) -> String {
        sha256_hex(token.as_bytes())
    }

    /// Ends one session in one transaction: deleted, its grants but the
    /// offline ones revoked, every OIDC client that got tokens in it told by
    /// back-channel (see [`crate::service::lifecycle::end_session_in`]), audited.
    pub async fn end_session(
        &self,
        digest: &str,
        user: &User,
        ip: Option<String>,
        action: &'static str,
    ) -> Result<()> {
        let now = self.now();
        let actor = Actor::user(user.username.as_str(), ip);
        let (d, uid) = (digest.to_string(), user.id.to_string());
        self.db(move |r| {
            let e = crate::service::lifecycle::end_session_in(r, &d, &uid, now)?;
            let detail = json!({"grants_revoked": e.grants_revoked, "logouts_queued": e.notices});
            record(r, now, &actor, action, actor.name.as_str(), detail)
        })
        .await
    }

    /// Whether a second factor was shown in this session recently enough
    /// (`webauthn.fresh_within`) to stand in for the current password.
    pub fn has_fresh_factor(&self, session: &Session) -> bool {
        crate::protocol::webauthn::fresh_second_factor(
            &session.factors,
            self.now(),
            self.fresh_window(),
        )
    }

    /// `webauthn.fresh_within`: how recent a factor must be to count as fresh.
    pub(super) fn fresh_window(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.webauthn.fresh_within)
            .unwrap_or_else(|_| chrono::Duration::minutes(5))
    }

    pub async fn has_password(&self, user: &User) -> Result<bool> {
        let id = user.id.clone();
        Ok(self.db(move |r| r.password(&id)).await?.is_some())
    }

    /// Replaces (or sets) the signed-in user's password. Proof is the current
    /// password, or a second factor shown in this session within
    /// `webauthn.fresh_within`. Every other session of the user ends.
    pub async fn change_password(
        &self,
        session: &Session,
        user: &User,
        current: &str,
        new: &str,
        ip: Option<String>,
    ) -> Result<()> {
        let min = self.settings.login.password_min_length;
        check_password_policy(new, min, user.username.as_str()).map_err(Error::invalid)?;
        let fresh = self.has_fresh_factor(session);
        if !fresh || !current.is_empty() {
            if current == new {
                return Err(Error::invalid(
                    "The new password must differ from the current one.",
                ));
            }
            let id = user.id.clone();
            let Some(cred) = self.db(move |r| r.password(&id)).await? else {
                return Err(Error::new(
                    ErrorKind::Unauthenticated,
                    "Confirm it's you with your passkey first.",
                ));
            };
            let (cur, phc) = (current.to_string(), cred.hash);
            if !self
                .hashing(move |m| verify_password_in(m, &cur, &phc))
                .await?
            {
                return Err(Error::new(
                    ErrorKind::Unauthenticated,
                    "The current password is incorrect.",
                ));
            }
        }
        let new_pw = new.to_string();
        let hash = self
            .hashing(move |m| hash_password_in(m, &new_pw))
            .await?
            .map_err(Error::internal)?;
        let now = self.now();
        let (id, keep, actor) = (
            user.id.clone(),
            session.id_digest.clone(),
            Actor::user(user.username.as_str(), ip),
        );
        self.db(move |r| {
            r.set_password(
                &id,
                &PasswordCredential {
                    hash: hash.clone(),
                    must_change: false,
                    updated_at: now,
                },
            )?;
            // Whoever else held the account loses it: every other session
            // ends, with the grants and tokens it gave.
            let cut = crate::service::lifecycle::cut_access_in(r, &id, Some(&keep), now)?;
            record(
                r,
                now,
                &actor,
                "password.change",
                actor.name.as_str(),
                json!({"sessions_ended": cut.sessions.len(), "grants_revoked": cut.grants_revoked,
                    "logouts_queued": cut.notices}),
            )
        })
        .await
    }

    /// Whether the user must replace a one-time password before going on.
    pub async fn must_change_password(&self, user: &User) -> Result<bool> {
        let id = user.id.clone();
        Ok(self
            .db(move |r| r.password(&id))
            .await?
            .is_some_and(|c| c.must_change))
    }
}

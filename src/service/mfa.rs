//! TOTP and recovery codes: enrollment, and the second step of sign-in.

use super::auth::{ClientInfo, SignedIn};
use super::throttle::{account_key, locked};
use super::{Actor, Services, record};
use crate::crypto::password::{hash_password_in, verify_password_in};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{User, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::login::ThrottleDecision;
use crate::protocol::mfa::{
    TotpEnrollment, check_totp, enrollment, new_recovery_codes, new_totp_secret,
    normalise_recovery_code,
};
use crate::store::StoredTotp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

const ENROLL_TTL: Duration = Duration::from_secs(15 * 60);
const PENDING_TTL: Duration = Duration::from_secs(5 * 60);

fn aad(user: &UserId) -> Vec<u8> {
    format!("portcullis-totp:{user}").into_bytes()
}

#[derive(Serialize, Deserialize)]
pub(super) struct Pending {
    user_id: String,
    must_change: bool,
    /// A digest of the password hash that was proven: a password changed or
    /// reset meanwhile voids the half-done sign-in.
    #[serde(default)]
    password: Option<String>,
}

fn sign_in_expired() -> Error {
    Error::invalid("This sign-in has expired. Please sign in again.")
}

fn pending_key(token: &str) -> String {
    format!("mfa-pending:{}", sha256_hex(token.as_bytes()))
}

/// What the security page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MfaStatus {
    pub totp: bool,
    pub recovery_codes_left: usize,
    /// WebAuthn credentials of any kind.
    pub passkeys: usize,
}

impl MfaStatus {
    pub fn has_second_factor(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

impl Services {
    pub async fn mfa_status(&self, user: &User) -> Result<MfaStatus> {
        let id = user.id.clone();
        let (totp, codes, passkeys) = self
            .db(move |r| {
                Ok((
                    r.totp(&id)?,
                    r.recovery_codes(&id)?,
                    r.passkeys_of(&id)?.len(),
                ))
            })
            .await?;
        Ok(MfaStatus {
            totp: totp.is_some(),
            recovery_codes_left: codes.iter().filter(|c| !c.used).count(),
            passkeys,
        })
    }

    /// A new secret to show as a QR code; it counts only once confirmed.
    pub async fn start_totp_enrollment(&self, user: &User) -> Result<TotpEnrollment> {
        let secret = new_totp_secret();
        let sealed = self.keys.seal(&secret, &aad(&user.id));
        self.ephemeral
            .put_ttl(
                &format!("totp-enroll:{}", user.id),
                sealed.as_bytes(),
                ENROLL_TTL,
            )
            .await?;
        enrollment(&secret, user.username.as_str()).map_err(Error::internal)
    }

    /// Confirms enrollment with a first code. Returns fresh recovery codes
    /// when the user had none (shown once).
    pub async fn confirm_totp(
        &self,
        user: &User,
        code: &str,
        ip: Option<String>,
    ) -> Result<Vec<String>> {
        let key = format!("totp-enroll:{}", user.id);
        let sealed = self
            .ephemeral
            .get(&key)
            .await?
            .ok_or_else(|| Error::invalid("The set-up has expired; start again."))?;
        let sealed = String::from_utf8_lossy(&sealed).to_string();
        let secret = self.keys.open(&sealed, &aad(&user.id))?;
        let now = self.now();
        let step = check_totp(&secret, code, now.timestamp() as u64, 0).ok_or_else(|| {
            Error::new(
                ErrorKind::Unauthenticated,
                "That code is not right. Check the time on your device and try again.",
            )
        })?;
        self.ephemeral.delete(&key).await?;
        let has_codes = {
            let id = user.id.clone();
            !self.db(move |r| r.recovery_codes(&id)).await?.is_empty()
        };
        let (codes, hashes) = if has_codes {
            (vec![], vec![])
        } else {
            self.hashed_recovery_codes().await?
        };
        let (id, actor) = (user.id.clone(), Actor::user(user.username.as_str(), ip));
        self.db(move |r| {
            r.set_totp(
                &id,
                &StoredTotp {
                    sealed_secret: sealed.clone(),
                    created_at: now,
                    last_step: step,
                },
            )?;
            if !hashes.is_empty() {
                r.replace_recovery_codes(&id, &hashes, now)?;
            }
            record(
                r,
                now,
                &actor,
                "mfa.totp_enroll",
                actor.name.as_str(),
                json!({}),
            )
        })
        .await?;
        Ok(codes)
    }

    pub async fn remove_totp(&self, user: &User, ip: Option<String>) -> Result<()> {
        let (id, actor, now) = (
            user.id.clone(),
            Actor::user(user.username.as_str(), ip),
            self.now(),
        );
        self.db(move |r| {
            r.delete_totp(&id)?;
            r.replace_recovery_codes(&id, &[], now)?;
            record(
                r,
                now,
                &actor,
                "mfa.totp_remove",
                actor.name.as_str(),
                json!({}),
            )
        })
        .await
    }

    async fn hashed_recovery_codes(&self) -> Result<(Vec<String>, Vec<String>)> {
        let codes = new_recovery_codes();
        let plain: Vec<String> = codes.iter().map(|c| normalise_recovery_code(c)).collect();
        let hashes = self
            .hashing(move |m| {
                plain
                    .iter()
                    .map(|c| hash_password_in(m, c))
                    .collect::<std::result::Result<Vec<_>, _>>()
            })
            .await?
            .map_err(Error::internal)?;
        Ok((codes, hashes))
    }

    /// Ten new recovery codes; the old ones stop working.
    pub async fn regenerate_recovery_codes(
        &self,
        user: &User,
        ip: Option<String>,
    ) -> Result<Vec<String>> {
        let (codes, hashes) = self.hashed_recovery_codes().await?;
        let (id, actor, now) = (
            user.id.clone(),
            Actor::user(user.username.as_str(), ip),
            self.now(),
        );
        self.db(move |r| {
            r.replace_recovery_codes(&id, &hashes, now)?;
            record(
                r,
                now,
                &actor,
                "mfa.recovery_regenerate",
                actor.name.as_str(),
                json!({}),
            )
        })
        .await?;
        Ok(codes)
    }

    pub(super) async fn start_second_factor(
        &self,
        user: &User,
        password: &crate::domain::PasswordCredential,
    ) -> Result<String> {
        let token = random_token();
        let p = serde_json::to_vec(&Pending {
            user_id: user.id.to_string(),
            must_change: password.must_change,
            password: Some(sha256_hex(password.hash.as_bytes())),
        })
        .map_err(|e| Error::internal(e.to_string()))?;
        self.ephemeral
            .put_ttl(&pending_key(&token), &p, PENDING_TTL)
            .await?;
        Ok(token)
    }

    /// The pending sign-in and its user, while both are still good.
    async fn read_pending(&self, pending: &str) -> Result<Option<(Pending, User)>> {
        let Some(bytes) = self.ephemeral.get(&pending_key(pending)).await? else {
            return Ok(None);
        };
        let Ok(p) = serde_json::from_slice::<Pending>(&bytes) else {
            return Ok(None);
        };
        let id = UserId::from_stored(p.user_id.clone());
        let (user, cred) = self
            .db(move |r| Ok((r.user_by_id(&id)?, r.password(&id)?)))
            .await?;
        let current = cred.map(|c| sha256_hex(c.hash.as_bytes()));
        if p.password.is_some() && p.password != current {
            return Ok(None);
        }
        Ok(user.filter(User::is_active).map(|u| (p, u)))
    }

    /// The user behind a pending second-factor token, unless it expired, the
    /// account was disabled meanwhile or the account is locked.
    pub(super) async fn pending_user(&self, pending: &str, ip: &str) -> Result<(Pending, User)> {
        let (p, user) = self
            .read_pending(pending)
            .await?
            .ok_or_else(sign_in_expired)?;
        let name = user.username.to_string();
        if let ThrottleDecision::Locked { retry_after } = self.throttle_decision(&name, ip).await? {
            self.ephemeral.delete(&pending_key(pending)).await?;
            return Err(locked(retry_after));
        }
        Ok((p, user))
    }

    /// The second factors a pending sign-in can use (none once it expired).
    pub async fn pending_factors(&self, pending: &str) -> Result<MfaStatus> {
        match self.read_pending(pending).await? {
            Some((_, u)) => self.mfa_status(&u).await,
            None => Ok(MfaStatus {
                totp: false,
                recovery_codes_left: 0,
                passkeys: 0,
            }),
        }
    }

    /// Counts a wrong second factor as a failed sign-in.
    pub(super) async fn second_factor_failed(
        &self,
        user: &User,
        method: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let name = user.username.to_string();
        let ip = client.ip.clone().unwrap_or_else(|| "unknown".into());
        self.count_failure(&name, &ip).await?;
        let (a, now) = (Actor::user(&name, client.ip.clone()), self.now());
        let detail = json!({ "method": method });
        self.db(move |r| record(r, now, &a, "login.failure", &name, detail.clone()))
            .await
    }

    /// Spends the pending token and opens the session with `methods` after
    /// the password.
    pub(super) async fn finish_pending(
        &self,
        pending: &str,
        p: Pending,
        user: User,
        methods: Vec<String>,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        if self.ephemeral.take(&pending_key(pending)).await?.is_none() {
            return Err(sign_in_expired());
        }
        let name = user.username.to_string();
        self.ephemeral.delete(&account_key(&name)).await?;
        let mut amr = vec!["pwd".to_string()];
        amr.extend(methods);
        if !amr.iter().any(|m| m == "mfa") {
            amr.push("mfa".into());
        }
        let actor = Actor::user(&name, client.ip.clone());
        let token = self.open_session(&user, amr, client, &actor).await?;
        Ok(SignedIn {
            token,
            user,
            must_change_password: p.must_change,
        })
    }

    /// Checks a TOTP or recovery code for a user who passed the password
    /// step; a wrong code counts as a failed sign-in.
    pub async fn complete_second_factor(
        &self,
        pending: &str,
        code: &str,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        let ip = client.ip.clone().unwrap_or_else(|| "unknown".into());
        let (p, user) = self.pending_user(pending, &ip).await?;
        let Some(method) = self.check_factor(&user, code).await? else {
            self.second_factor_failed(&user, "otp", client).await?;
            return Err(Error::new(
                ErrorKind::Unauthenticated,
                "That code is not right.",
            ));
        };
        self.finish_pending(pending, p, user, vec![method.into()], client)
            .await
    }

    /// `Some("otp")` when `code` is a valid TOTP or an unspent recovery code.
    async fn check_factor(&self, user: &User, code: &str) -> Result<Option<&'static str>> {
        let id = user.id.clone();
        let (totp, codes) = self
            .db(move |r| Ok((r.totp(&id)?, r.recovery_codes(&id)?)))
            .await?;
        let now = self.now();
        if let Some(t) = totp {
            let secret = self.keys.open(&t.sealed_secret, &aad(&user.id))?;
            if let Some(step) = check_totp(&secret, code, now.timestamp() as u64, t.last_step) {
                let id = user.id.clone();
                if self.db(move |r| r.advance_totp_step(&id, step)).await? {
                    return Ok(Some("otp"));
                }
                return Ok(None);
            }
        }
        let normal = normalise_recovery_code(code);
        if normal.len() != 12 {
            return Ok(None);
        }
        let candidates: Vec<(String, String)> = codes
            .into_iter()
            .filter(|c| !c.used)
            .map(|c| (c.id, c.code_hash))
            .collect();
        let found = self
            .hashing(move |m| {
                candidates
                    .into_iter()
                    .find(|(_, h)| verify_password_in(m, &normal, h))
                    .map(|(id, _)| id)
            })
            .await?;
        let Some(code_id) = found else {
            return Ok(None);
        };
        let (actor, n) = (
            Actor::user(user.username.as_str(), None),
            user.username.to_string(),
        );
        let spent = self
            .db(move |r| {
                let ok = r.spend_recovery_code(&code_id, now)?;
                if ok {
                    record(r, now, &actor, "mfa.recovery_used", &n, json!({}))?;
                }
                Ok(ok)
            })
            .await?;
        Ok(spent.then_some("otp"))
    }
}

/// One of the user's sessions, as the security page lists it.
#[derive(Debug, Clone)]
pub struct SessionView {
    /// The public session ID (`sid`), used to end it.
    pub sid: String,
    pub current: bool,
    pub started: chrono::DateTime<chrono::Utc>,
    pub last_seen: chrono::DateTime<chrono::Utc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub methods: Vec<String>,
}

impl Services {
    /// The user's live sessions, newest activity first.
    pub async fn user_sessions(
        &self,
        user: &User,
        current_digest: &str,
    ) -> Result<Vec<SessionView>> {
        let id = user.id.clone();
        let now = self.now();
        let sessions = self.db(move |r| r.sessions_of(&id)).await?;
        Ok(sessions
            .into_iter()
            .filter(|s| s.expires_at > now)
            .map(|s| SessionView {
                sid: crate::protocol::oidc::claims::sid_for(&s.id_digest),
                current: s.id_digest == current_digest,
                started: s.auth_time,
                last_seen: s.last_seen_at,
                ip: s.ip,
                user_agent: s.user_agent,
                methods: s.amr,
            })
            .collect())
    }

    /// Ends one of the user's own sessions, named by its `sid`. Returns
    /// whether it was found.
    pub async fn end_user_session(
        &self,
        user: &User,
        sid: &str,
        ip: Option<String>,
    ) -> Result<bool> {
        let id = user.id.clone();
        let sessions = self.db(move |r| r.sessions_of(&id)).await?;
        let Some(s) = sessions
            .into_iter()
            .find(|s| crate::protocol::oidc::claims::sid_for(&s.id_digest) == sid)
        else {
            return Ok(false);
        };
        self.end_session(&s.id_digest, user, ip, "session.end")
            .await?;
        Ok(true)
    }
}

impl Services {
    /// Refuses a change to how the user signs in (passkeys, authenticator
    /// app, recovery codes) unless this session proved who it is within
    /// `webauthn.fresh_within`: a stolen, older session cannot plant its own
    /// way in.
    pub fn require_recent_sign_in(&self, session: &crate::domain::Session) -> Result<()> {
        if crate::protocol::webauthn::recently_authenticated(
            &session.factors,
            self.now(),
            self.fresh_window(),
        ) {
            return Ok(());
        }
        Err(Error::oauth(
            ErrorKind::Forbidden,
            "reauthentication_required",
            "For your safety, confirm it's you again before changing how you sign in.",
        ))
    }
}

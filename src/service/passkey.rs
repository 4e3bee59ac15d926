//! Proving a passkey: usernameless sign-in, the second step after a
//! password, and a fresh check inside a session (step-up, elevation).

use super::auth::{ClientInfo, SignedIn};
use super::webauthn::{
    Ceremony, Challenge, ceremony_expired, credential_b64, parse_passkey, user_handle,
};
use super::{Actor, Services, record};
use crate::domain::{Session, User, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::webauthn::{fresh_passkey, merge_factors, passkey_methods};
use crate::store::StoredPasskey;
use serde_json::json;
use webauthn_rs::prelude::*;

fn not_verified() -> Error {
    Error::new(
        ErrorKind::Unauthenticated,
        "The passkey could not be verified. Please try again.",
    )
}

/// What a verified assertion proved.
struct Proven {
    user: User,
    methods: Vec<String>,
}

impl Services {
    /// Options for "Sign in with a passkey" and for browser autofill: no
    /// username, the authenticator offers the user's discoverable passkeys.
    pub async fn start_passkey_signin(
        &self,
        ip: Option<&str>,
    ) -> Result<Challenge<RequestChallengeResponse>> {
        self.spend_start(ip).await?;
        let (options, state) = self
            .rp()?
            .start_discoverable_authentication()
            .map_err(|e| Error::internal(format!("webauthn start: {e}")))?;
        let ceremony = self.put_ceremony(&Ceremony::SignIn { state }).await?;
        Ok(Challenge { ceremony, options })
    }

    /// Finishes a usernameless sign-in and opens a session.
    pub async fn finish_passkey_signin(
        &self,
        ceremony: &str,
        response: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        let Ceremony::SignIn { state } = self.take_ceremony(ceremony).await? else {
            return Err(ceremony_expired());
        };
        let (handle, _) = self
            .rp()?
            .identify_discoverable_authentication(response)
            .map_err(|_| not_verified())?;
        let stored = self.credential_for(response, None, client).await?;
        if user_handle(&stored.user_id)? != handle {
            return Err(not_verified());
        }
        let passkey = parse_passkey(&stored)?;
        let outcome = self
            .rp()?
            .finish_discoverable_authentication_v2(response, state, &passkey);
        let proven = self.settle(stored, passkey, outcome, client).await?;
        let actor = Actor::user(proven.user.username.as_str(), client.ip.clone());
        let token = self
            .open_session(&proven.user, proven.methods, client, &actor)
            .await?;
        Ok(SignedIn {
            token,
            user: proven.user,
            must_change_password: false,
        })
    }

    /// Options for the second step after a password: any of the user's
    /// passkeys or security keys.
    pub async fn start_passkey_second_factor(
        &self,
        pending: &str,
        client: &ClientInfo,
    ) -> Result<Challenge<RequestChallengeResponse>> {
        let ip = client.ip.clone().unwrap_or_else(|| "unknown".into());
        let (_, user) = self.pending_user(pending, &ip).await?;
        self.spend_start(Some(&ip)).await?;
        let (options, state) = self.assertion_options(&user.id).await?;
        let ceremony = self
            .put_ceremony(&Ceremony::SecondFactor {
                pending: pending.to_string(),
                state,
            })
            .await?;
        Ok(Challenge { ceremony, options })
    }

    pub async fn finish_passkey_second_factor(
        &self,
        ceremony: &str,
        response: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        let Ceremony::SecondFactor { pending, state } = self.take_ceremony(ceremony).await? else {
            return Err(ceremony_expired());
        };
        let ip = client.ip.clone().unwrap_or_else(|| "unknown".into());
        let (p, user) = self.pending_user(&pending, &ip).await?;
        let proven = match self.prove(&user, response, &state, client).await {
            Ok(p) => p,
            Err(e) => {
                self.second_factor_failed(&user, "hwk", client).await?;
                return Err(e);
            }
        };
        let methods: Vec<String> = proven.methods.into_iter().filter(|m| m != "mfa").collect();
        self.finish_pending(&pending, p, user, methods, client)
            .await
    }

    /// Options for a fresh passkey check by the signed-in user.
    pub async fn start_passkey_check(
        &self,
        session: &Session,
        user: &User,
        ip: Option<&str>,
    ) -> Result<Challenge<RequestChallengeResponse>> {
        self.spend_start(ip).await?;
        let (options, state) = self.assertion_options(&user.id).await?;
        let ceremony = self
            .put_ceremony(&Ceremony::Verify {
                session: session.id_digest.clone(),
                state,
            })
            .await?;
        Ok(Challenge { ceremony, options })
    }

    /// Records a fresh user-verified passkey in the session: its methods and
    /// time join the session's, which is what step-up and elevation read.
    pub async fn finish_passkey_check(
        &self,
        session: &Session,
        user: &User,
        ceremony: &str,
        response: &PublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<()> {
        let Ceremony::Verify {
            session: digest,
            state,
        } = self.take_ceremony(ceremony).await?
        else {
            return Err(ceremony_expired());
        };
        if digest != session.id_digest {
            return Err(ceremony_expired());
        }
        let proven = self.prove(user, response, &state, client).await?;
        let now = self.now();
        let (amr, factors) = merge_factors(&session.amr, &session.factors, &proven.methods, now);
        let actor = Actor::user(user.username.as_str(), client.ip.clone());
        self.db(move |r| {
            r.record_factors(&digest, &amr, &factors, now)?;
            record(
                r,
                now,
                &actor,
                "passkey.verify",
                actor.name.as_str(),
                json!({"amr": amr}),
            )
        })
        .await
    }

    /// Whether the session shows a user-verified passkey within the
    /// configured `webauthn.fresh_within`.
    pub fn has_fresh_passkey(&self, session: &Session) -> bool {
        fresh_passkey(&session.factors, self.now(), self.fresh_window())
    }

    async fn assertion_options(
        &self,
        user: &UserId,
    ) -> Result<(RequestChallengeResponse, PasskeyAuthentication)> {
        let stored = self.stored_passkeys(user).await?;
        let keys: Vec<Passkey> = stored.iter().map(parse_passkey).collect::<Result<_>>()?;
        if keys.is_empty() {
            return Err(Error::invalid(
                "You have no passkey yet. Add one on your security page.",
            ));
        }
        self.rp()?
            .start_passkey_authentication(&keys)
            .map_err(|e| Error::internal(format!("webauthn start: {e}")))
    }

    /// Verifies an assertion against `state` for a known user.
    async fn prove(
        &self,
        user: &User,
        response: &PublicKeyCredential,
        state: &PasskeyAuthentication,
        client: &ClientInfo,
    ) -> Result<Proven> {
        let stored = self
            .credential_for(response, Some(&user.id), client)
            .await?;
        let passkey = parse_passkey(&stored)?;
        let outcome = self.rp()?.finish_passkey_authentication(response, state);
        self.settle(stored, passkey, outcome, client).await
    }

    /// The stored credential an assertion names, belonging to `owner` when
    /// the user is known already.
    async fn credential_for(
        &self,
        response: &PublicKeyCredential,
        owner: Option<&UserId>,
        client: &ClientInfo,
    ) -> Result<StoredPasskey> {
        let cid = credential_b64(response.get_credential_id());
        let found = self
            .db(move |r| r.passkey_by_credential_id(&cid))
            .await?
            .filter(|p| owner.is_none_or(|o| *o == p.user_id));
        match found {
            Some(p) => Ok(p),
            None => {
                let (a, now) = (Actor::user("unknown", client.ip.clone()), self.now());
                self.db(move |r| {
                    record(
                        r,
                        now,
                        &a,
                        "login.failure",
                        "unknown",
                        json!({"method": "webauthn", "reason": "unknown credential"}),
                    )
                })
                .await?;
                Err(not_verified())
            }
        }
    }

    /// Turns webauthn-rs' verdict into a decision: records the use (counter,
    /// backup state), audits a counter that went backwards as a possible
    /// clone and refuses it, and checks the account is still active.
    async fn settle(
        &self,
        stored: StoredPasskey,
        mut passkey: Passkey,
        outcome: WebauthnResult<AuthenticationResult>,
        client: &ClientInfo,
    ) -> Result<Proven> {
        let uid = stored.user_id.clone();
        let user = self
            .db(move |r| r.user_by_id(&uid))
            .await?
            .ok_or_else(not_verified)?;
        let actor = Actor::user(user.username.as_str(), client.ip.clone());
        let now = self.now();
        let result = match outcome {
            Ok(r) if r.user_verified() => r,
            Ok(_) => return Err(not_verified()),
            Err(WebauthnError::CredentialPossibleCompromise) => {
                tracing::warn!(user = %user.username, passkey = %stored.id, "passkey counter went backwards: possible cloned authenticator");
                let (a, n, id, count) = (
                    actor.clone(),
                    user.username.to_string(),
                    stored.id.clone(),
                    stored.sign_count,
                );
                self.db(move |r| {
                    record(
                        r,
                        now,
                        &a,
                        "passkey.clone_suspected",
                        &n,
                        json!({"passkey": id, "stored_counter": count}),
                    )
                })
                .await?;
                return Err(Error::new(
                    ErrorKind::Unauthenticated,
                    "This passkey was refused: its use counter went backwards, which is what a copied authenticator does. Contact your administrator.",
                ));
            }
            Err(e) => {
                let (a, n) = (actor.clone(), user.username.to_string());
                let reason = e.to_string();
                self.db(move |r| {
                    record(
                        r,
                        now,
                        &a,
                        "login.failure",
                        &n,
                        json!({"method": "webauthn", "reason": reason}),
                    )
                })
                .await?;
                return Err(not_verified());
            }
        };
        if !user.is_active() {
            return Err(Error::forbidden(
                "This account is disabled. Contact your administrator.",
            ));
        }
        passkey.update_credential(&result);
        let json = serde_json::to_string(&passkey).map_err(|e| Error::internal(e.to_string()))?;
        let backup_changed = result.backup_state() != stored.backup_state;
        let (id, n, a) = (stored.id.clone(), user.username.to_string(), actor.clone());
        let (count, backup) = (i64::from(result.counter()), result.backup_state());
        let count = count.max(stored.sign_count);
        self.db(move |r| {
            r.record_passkey_use(&id, &json, count, backup, now)?;
            if backup_changed {
                record(
                    r,
                    now,
                    &a,
                    "passkey.backup_state",
                    &n,
                    json!({"passkey": id, "backed_up": backup}),
                )?;
            }
            Ok(())
        })
        .await?;
        Ok(Proven {
            methods: passkey_methods(stored.backup_eligible || result.backup_eligible()),
            user,
        })
    }
}

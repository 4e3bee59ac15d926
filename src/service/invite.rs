//! Passkey-first onboarding: a one-time, expiring enrollment link.

use super::auth::{ClientInfo, SignedIn};
use super::directory::NewUser;
use super::webauthn::{Ceremony, Challenge, ceremony_expired, store_credential};
use super::{Actor, Services, record};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{User, Username};
use crate::error::{Error, Result};
use crate::protocol::webauthn::passkey_methods;
use crate::store::StoredInvite;
use chrono::{DateTime, Utc};
use serde_json::json;
use webauthn_rs::prelude::*;

/// A new enrollment link for an administrator to hand over.
#[derive(Debug, Clone)]
pub struct Invitation {
    pub url: String,
    pub expires_at: DateTime<Utc>,
    /// Whether the user was created by this invitation.
    pub created: bool,
}

/// What an invitation link is worth right now.
#[derive(Debug)]
pub enum InviteState {
    Valid(User),
    Used,
    Expired,
    Unknown,
}

impl InviteState {
    /// The sentence the page shows for a link that cannot be used.
    pub fn refusal(&self) -> &'static str {
        match self {
            Self::Valid(_) => "",
            Self::Used => {
                "This invitation link has already been used. Sign in with the passkey you created, or ask your administrator for a new link."
            }
            Self::Expired => {
                "This invitation link has expired. Ask your administrator for a new one."
            }
            Self::Unknown => "This invitation link is not valid. Check that you copied all of it.",
        }
    }
}

fn digest(token: &str) -> String {
    sha256_hex(format!("portcullis-invite:{token}").as_bytes())
}

impl Services {
    /// Creates the user without a password when missing, voids older links
    /// and returns a new one.
    pub async fn invite_user(
        &self,
        actor: &Actor,
        username: &str,
        display_name: Option<String>,
        email: Option<String>,
    ) -> Result<Invitation> {
        let name = Username::parse(username).map_err(|e| Error::invalid(e.to_string()))?;
        let lookup = name.clone();
        let existing = self.db(move |r| r.user_by_username(&lookup)).await?;
        let (user, created) = match existing {
            Some(u) if !u.is_active() => {
                return Err(Error::invalid(format!(
                    "{username} is disabled; enable the account before inviting"
                )));
            }
            Some(u) => (u, false),
            None => {
                let input = NewUser {
                    username: name.to_string(),
                    display_name,
                    email,
                    ..NewUser::default()
                };
                (self.create_user(actor, input).await?, true)
            }
        };
        let token = random_token();
        let now = self.now();
        let lifetime = chrono::Duration::from_std(self.settings.webauthn.invite_lifetime)
            .map_err(|e| Error::internal(e.to_string()))?;
        let invite = StoredInvite {
            digest: digest(&token),
            user_id: user.id.clone(),
            created_at: now,
            expires_at: now + lifetime,
            used_at: None,
        };
        let (i, a, n) = (invite.clone(), actor.clone(), user.username.to_string());
        self.db(move |r| {
            r.void_invites_of(&i.user_id, now)?;
            r.insert_invite(&i)?;
            record(
                r,
                now,
                &a,
                "user.invite",
                &n,
                json!({"expires_at": i.expires_at.to_rfc3339()}),
            )
        })
        .await?;
        Ok(Invitation {
            url: format!("{}/invite/{token}", self.issuer),
            expires_at: invite.expires_at,
            created,
        })
    }

    pub async fn invite_state(&self, token: &str) -> Result<InviteState> {
        if token.is_empty() || token.len() > 128 {
            return Ok(InviteState::Unknown);
        }
        let d = digest(token);
        let now = self.now();
        self.db(move |r| {
            let Some(i) = r.invite(&d)? else {
                return Ok(InviteState::Unknown);
            };
            if i.used_at.is_some() {
                return Ok(InviteState::Used);
            }
            if i.expires_at <= now {
                return Ok(InviteState::Expired);
            }
            Ok(match r.user_by_id(&i.user_id)? {
                Some(u) if u.is_active() => InviteState::Valid(u),
                _ => InviteState::Unknown,
            })
        })
        .await
    }

    async fn invited_user(&self, token: &str) -> Result<User> {
        match self.invite_state(token).await? {
            InviteState::Valid(u) => Ok(u),
            other => Err(Error::invalid(other.refusal())),
        }
    }

    /// Creation options for the invited user's first passkey.
    pub async fn start_invite_enrollment(
        &self,
        token: &str,
    ) -> Result<Challenge<CreationChallengeResponse>> {
        let user = self.invited_user(token).await?;
        let existing = self.stored_passkeys(&user.id).await?;
        let (options, state) = self.creation_options(&user, &existing, true)?;
        let ceremony = self
            .put_ceremony(&Ceremony::Invite {
                digest: digest(token),
                state,
            })
            .await?;
        Ok(Challenge { ceremony, options })
    }

    /// Registers the passkey, spends the link and signs the user in, all or
    /// nothing: a failed registration leaves the link usable.
    pub async fn finish_invite_enrollment(
        &self,
        token: &str,
        ceremony: &str,
        name: &str,
        response: &RegisterPublicKeyCredential,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        let Ceremony::Invite { digest: d, state } = self.take_ceremony(ceremony).await? else {
            return Err(ceremony_expired());
        };
        if d != digest(token) {
            return Err(ceremony_expired());
        }
        let user = self.invited_user(token).await?;
        let actor = Actor::user(user.username.as_str(), client.ip.clone());
        let stored = self
            .verify_registration(&user, name, true, response, &state, &actor)
            .await?;
        let (s, a, now) = (stored.clone(), actor.clone(), self.now());
        self.db(move |r| {
            if !r.spend_invite(&d, now)? {
                return Err(Error::invalid(InviteState::Used.refusal()));
            }
            store_credential(r, &s, &a)?;
            record(
                r,
                now,
                &a,
                "user.invite_accepted",
                a.name.as_str(),
                json!({"passkey": s.id}),
            )
        })
        .await?;
        let token = self
            .open_session(
                &user,
                passkey_methods(stored.backup_eligible),
                client,
                &actor,
            )
            .await?;
        Ok(SignedIn {
            token,
            user,
            must_change_password: false,
        })
    }
}

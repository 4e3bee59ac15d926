//! WebAuthn ceremonies around webauthn-rs: ceremony state in the ephemeral
//! store (any node can finish what another started), registration, and the
//! user's list of passkeys and security keys.

use super::{Actor, Services, record};
use crate::config::{AttestationPolicy, Settings};
use crate::crypto::{random_token, sha256_hex};
use crate::domain::{User, UserId};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::webauthn::{aaguid_allowed, aaguid_of, may_remove_credential, passkey_name};
use crate::store::StoredPasskey;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use webauthn_rs::prelude::*;
use webauthn_rs_proto::{AttestationConveyancePreference, ResidentKeyRequirement};

/// How long the browser has to finish a ceremony.
const CEREMONY_TTL: Duration = Duration::from_secs(5 * 60);

/// Builds the relying party from the settings: the RP ID is the issuer's
/// host unless configured, and the issuer is the only allowed origin.
/// The WebAuthn relying party, or `None` (passkeys off, with one warning)
/// when the issuer is an IP address and no `webauthn.rp_id` is set:
/// browsers accept only a domain as relying-party ID.
pub fn relying_party(settings: &Settings, issuer: &str) -> Result<Option<Webauthn>> {
    let origin =
        Url::parse(issuer).map_err(|e| Error::invalid(format!("`issuer` is not a URL: {e}")))?;
    let Some(host) = origin.host_str().map(str::to_string) else {
        return Err(Error::invalid("`issuer` has no host name"));
    };
    let rp_id = match &settings.webauthn.rp_id {
        Some(id) => id.clone(),
        None if matches!(origin.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) => {
            tracing::warn!(
                "passkeys are off: the issuer {issuer} is an IP address, and WebAuthn needs a domain; \
                 set webauthn.rp_id (and an issuer on that domain) to turn them on"
            );
            return Ok(None);
        }
        None => host,
    };
    WebauthnBuilder::new(&rp_id, &origin)
        .and_then(|b| b.rp_name(&settings.webauthn.rp_name).build())
        .map(Some)
        .map_err(|e| {
            Error::invalid(format!(
                "`webauthn.rp_id` {rp_id} does not fit the issuer {issuer}: it must be the issuer's host \
                 or a domain the host belongs to ({e})"
            ))
        })
}

impl Services {
    /// The relying party; a clear refusal when passkeys are off.
    pub(super) fn rp(&self) -> Result<&Webauthn> {
        self.webauthn.as_deref().ok_or_else(|| {
            Error::new(
                crate::error::ErrorKind::Unavailable,
                "Passkeys are turned off on this server (its address is an IP address; the administrator can set webauthn.rp_id).",
            )
        })
    }
}

/// A ceremony in flight, keyed by a random ID the browser sends back.
#[derive(Serialize, Deserialize)]
pub(super) enum Ceremony {
    Register {
        user_id: String,
        discoverable: bool,
        state: Registration,
    },
    Invite {
        digest: String,
        state: Registration,
    },
    SignIn {
        state: DiscoverableAuthentication,
    },
    SecondFactor {
        pending: String,
        state: PasskeyAuthentication,
    },
    Verify {
        session: String,
        state: PasskeyAuthentication,
    },
}

/// A registration in flight: any authenticator, or (with
/// `webauthn.attestation_ca_files`) one whose attestation must chain to a
/// configured CA that vouches for its model.
#[derive(Serialize, Deserialize)]
pub(super) enum Registration {
    Any(PasskeyRegistration),
    Attested(AttestedPasskeyRegistration),
}

/// webauthn-rs' verdicts that mean "no trusted CA vouches for this model".
fn untrusted_attestation(e: &WebauthnError) -> bool {
    matches!(
        e,
        WebauthnError::AttestationNotVerifiable
            | WebauthnError::AttestationChainNotTrusted(_)
            | WebauthnError::AttestationUntrustedAaguid
            | WebauthnError::AttestationFormatMissingAaguid
            | WebauthnError::AttestationLeafCertMissing
            | WebauthnError::AttestationCertificateTrustStoreEmpty
            | WebauthnError::MissingAttestationCaList
    )
}

fn ceremony_key(id: &str) -> String {
    format!("webauthn:{}", sha256_hex(id.as_bytes()))
}

pub(super) fn ceremony_expired() -> Error {
    Error::invalid("This passkey request has expired. Please try again.")
}

/// What the browser needs to start a ceremony: the options to pass to
/// `navigator.credentials` and the ID to send back with the answer.
#[derive(Debug, Serialize)]
pub struct Challenge<T> {
    pub ceremony: String,
    pub options: T,
}

/// A credential as the security page lists it.
#[derive(Debug, Clone)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub discoverable: bool,
    pub synced: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<StoredPasskey> for PasskeyView {
    fn from(p: StoredPasskey) -> Self {
        Self {
            id: p.id,
            name: p.name,
            discoverable: p.discoverable,
            synced: p.backup_state,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// The user's handle inside WebAuthn: the user ID, which is a UUID.
pub(super) fn user_handle(user: &UserId) -> Result<Uuid> {
    Uuid::parse_str(user.as_str()).map_err(|e| Error::internal(format!("user id: {e}")))
}

pub(super) fn credential_b64(id: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

pub(super) fn parse_passkey(p: &StoredPasskey) -> Result<Passkey> {
    serde_json::from_str(&p.credential)
        .map_err(|e| Error::internal(format!("stored passkey {}: {e}", p.id)))
}

impl Services {
    pub(super) async fn put_ceremony(&self, c: &Ceremony) -> Result<String> {
        let id = random_token();
        let bytes = serde_json::to_vec(c).map_err(|e| Error::internal(e.to_string()))?;
        self.ephemeral
            .begin(&ceremony_key(&id), &bytes, CEREMONY_TTL)
            .await?;
        Ok(id)
    }

    /// Takes a ceremony (single use: a second answer to one challenge fails).
    pub(super) async fn take_ceremony(&self, id: &str) -> Result<Ceremony> {
        if id.is_empty() || id.len() > 128 {
            return Err(ceremony_expired());
        }
        let bytes = self
            .ephemeral
            .take(&ceremony_key(id))
            .await?
            .ok_or_else(ceremony_expired)?;
        serde_json::from_slice(&bytes).map_err(|_| ceremony_expired())
    }

    pub async fn passkeys(&self, user: &User) -> Result<Vec<PasskeyView>> {
        let id = user.id.clone();
        let list = self.db(move |r| r.passkeys_of(&id)).await?;
        Ok(list.into_iter().map(PasskeyView::from).collect())
    }

    pub(super) async fn stored_passkeys(&self, user: &UserId) -> Result<Vec<StoredPasskey>> {
        let id = user.clone();
        self.db(move |r| r.passkeys_of(&id)).await
    }

    /// Creation options for a new credential: a passkey (discoverable, for
    /// usernameless sign-in) or a security key used only after a password.
    pub(super) fn creation_options(
        &self,
        user: &User,
        existing: &[StoredPasskey],
        discoverable: bool,
    ) -> Result<(CreationChallengeResponse, Registration)> {
        let exclude: Vec<CredentialID> = existing
            .iter()
            .filter_map(|p| parse_passkey(p).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (rp, handle) = (self.rp()?, user_handle(&user.id)?);
        let (name, display) = (user.username.as_str(), user.display_name.as_str());
        let (mut ccr, state) = match &self.attestation_cas {
            None => rp
                .start_passkey_registration(handle, name, display, Some(exclude))
                .map(|(ccr, s)| (ccr, Registration::Any(s))),
            Some(cas) => rp
                .start_attested_passkey_registration(
                    handle,
                    name,
                    display,
                    Some(exclude),
                    cas.as_ref().clone(),
                    None,
                )
                .map(|(ccr, s)| (ccr, Registration::Attested(s))),
        }
        .map_err(|e| Error::internal(format!("webauthn start: {e}")))?;
        // webauthn-rs asks for `residentKey: discouraged`; usernameless
        // sign-in needs the credential stored on the authenticator.
        if discoverable && let Some(sel) = ccr.public_key.authenticator_selection.as_mut() {
            sel.require_resident_key = true;
            sel.resident_key = Some(ResidentKeyRequirement::Required);
        }
        if self.settings.webauthn.attestation == AttestationPolicy::Direct {
            ccr.public_key.attestation = Some(AttestationConveyancePreference::Direct);
        }
        Ok((ccr, state))
    }

    /// Starts adding a credential to the signed-in user's account.
    /// A new way in: needs a recent proof of who this is, and counts
    /// against the address's budget of started ceremonies.
    pub async fn start_passkey_registration(
        &self,
        session: &crate::domain::Session,
        user: &User,
        discoverable: bool,
        ip: Option<&str>,
    ) -> Result<Challenge<CreationChallengeResponse>> {
        self.require_recent_sign_in(session)?;
        self.spend_start(ip).await?;
        let existing = self.stored_passkeys(&user.id).await?;
        let (options, state) = self.creation_options(user, &existing, discoverable)?;
        let ceremony = self
            .put_ceremony(&Ceremony::Register {
                user_id: user.id.to_string(),
                discoverable,
                state,
            })
            .await?;
        Ok(Challenge { ceremony, options })
    }

    /// Finishes adding a credential started by [`Self::start_passkey_registration`].
    pub async fn finish_passkey_registration(
        &self,
        user: &User,
        ceremony: &str,
        name: &str,
        response: &RegisterPublicKeyCredential,
        ip: Option<String>,
    ) -> Result<PasskeyView> {
        let name = passkey_name(name).map_err(Error::invalid)?;
        let Ceremony::Register {
            user_id,
            discoverable,
            state,
        } = self.take_ceremony(ceremony).await?
        else {
            return Err(ceremony_expired());
        };
        if user_id != user.id.as_str() {
            return Err(ceremony_expired());
        }
        let actor = Actor::user(user.username.as_str(), ip);
        self.register_credential(user, &name, discoverable, response, &state, &actor)
            .await
    }

    /// Verifies a registration answer and stores the credential.
    async fn register_credential(
        &self,
        user: &User,
        name: &str,
        discoverable: bool,
        response: &RegisterPublicKeyCredential,
        state: &Registration,
        actor: &Actor,
    ) -> Result<PasskeyView> {
        let stored = self
            .verify_registration(user, name, discoverable, response, state, actor)
            .await?;
        let (s, a) = (stored.clone(), actor.clone());
        self.db(move |r| store_credential(r, &s, &a)).await?;
        Ok(stored.into())
    }

    /// Checks a registration answer and the authenticator policy; writes
    /// nothing but the audit of a refused model.
    pub(super) async fn verify_registration(
        &self,
        user: &User,
        name: &str,
        discoverable: bool,
        response: &RegisterPublicKeyCredential,
        state: &Registration,
        actor: &Actor,
    ) -> Result<StoredPasskey> {
        let rp = self.rp()?;
        let finished = match state {
            Registration::Any(s) => rp.finish_passkey_registration(response, s),
            Registration::Attested(s) => rp
                .finish_attested_passkey_registration(response, s)
                .map(Passkey::from),
        };
        // The AAGUID is the authenticator's own claim; it counts only when a
        // configured CA vouched for it above.
        let aaguid = aaguid_of(response.response.attestation_object.as_ref());
        let passkey = match finished {
            Ok(p) => Some(p),
            Err(e) if untrusted_attestation(&e) => None,
            Err(e) => {
                return Err(Error::invalid(
                    "The passkey could not be registered. Please try again.",
                )
                .with_detail(e.to_string()));
            }
        };
        let passkey = match passkey {
            Some(p) if aaguid_allowed(&self.settings.webauthn.allowed_aaguids, aaguid) => p,
            refused => {
                // Which check failed: no trusted CA vouched for the model, or
                // the (vouched-for) model is not on the list.
                let verdict = if refused.is_none() {
                    "untrusted"
                } else {
                    "unlisted"
                };
                let (a, n, now) = (actor.clone(), user.username.to_string(), self.now());
                let model = aaguid.map(|a| a.to_string());
                self.db(move |r| {
                    record(
                        r,
                        now,
                        &a,
                        "passkey.refused_model",
                        &n,
                        json!({"aaguid": model, "attestation": verdict}),
                    )
                })
                .await?;
                return Err(Error::forbidden(
                    "This kind of authenticator is not allowed here. Use one your organisation approved.",
                ));
            }
        };
        let cred: Credential = passkey.clone().into();
        let now = self.now();
        let stored = StoredPasskey {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user.id.clone(),
            credential_id: credential_b64(passkey.cred_id().as_ref()),
            name: name.to_string(),
            discoverable,
            credential: serde_json::to_string(&passkey)
                .map_err(|e| Error::internal(e.to_string()))?,
            aaguid: aaguid.map(|a| a.to_string()),
            sign_count: i64::from(cred.counter),
            backup_eligible: cred.backup_eligible,
            backup_state: cred.backup_state,
            created_at: now,
            last_used_at: None,
        };
        Ok(stored)
    }

    pub async fn rename_passkey(
        &self,
        user: &User,
        id: &str,
        name: &str,
        ip: Option<String>,
    ) -> Result<()> {
        let name = passkey_name(name).map_err(Error::invalid)?;
        let (uid, pid, actor, now) = (
            user.id.clone(),
            id.to_string(),
            Actor::user(user.username.as_str(), ip),
            self.now(),
        );
        self.db(move |r| {
            if !r.rename_passkey(&uid, &pid, &name)? {
                return Err(Error::not_found("That passkey does not exist."));
            }
            record(
                r,
                now,
                &actor,
                "passkey.rename",
                actor.name.as_str(),
                json!({"passkey": pid, "name": name}),
            )
        })
        .await
    }

    /// Removes a credential, unless it is the last way into a password-less
    /// account.
    pub async fn remove_passkey(&self, user: &User, id: &str, ip: Option<String>) -> Result<()> {
        let (uid, pid, actor, now) = (
            user.id.clone(),
            id.to_string(),
            Actor::user(user.username.as_str(), ip),
            self.now(),
        );
        self.db(move |r| {
            let has_password = r.password(&uid)?.is_some();
            let left = r.passkeys_of(&uid)?.len().saturating_sub(1);
            if !r.delete_passkey(&uid, &pid)? {
                return Err(Error::not_found("That passkey does not exist."));
            }
            if !may_remove_credential(has_password, left) {
                return Err(Error::conflict(
                    "This is your only way to sign in. Add another passkey or set a password before removing it.",
                ));
            }
            record(
                r,
                now,
                &actor,
                "passkey.remove",
                actor.name.as_str(),
                json!({"passkey": pid}),
            )
        })
        .await
    }
}

/// Inserts a verified credential and audits it, inside the caller's
/// transaction.
pub(super) fn store_credential(
    r: &mut dyn crate::store::Repo,
    s: &StoredPasskey,
    actor: &Actor,
) -> Result<()> {
    r.insert_passkey(s).map_err(|e| match e.kind {
        ErrorKind::Conflict => Error::conflict("This passkey is registered already."),
        _ => e,
    })?;
    record(
        r,
        s.created_at,
        actor,
        "passkey.register",
        actor.name.as_str(),
        json!({"passkey": s.id, "name": s.name, "discoverable": s.discoverable, "aaguid": s.aaguid}),
    )
}

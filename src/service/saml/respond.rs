//! Building, signing and (for SPs that ask) encrypting SAML Responses.

use super::certs::SamlSigner;
use super::sso::{SamlPost, SamlTx};
use crate::crypto::sha256_hex;
use crate::domain::{NameIdFormat, ServiceProvider, Session, User};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::claims::acr_for;
use crate::protocol::saml::encrypt::{encrypt_assertion, strip_declaration};
use crate::protocol::saml::response::{
    self as resp, AssertionInput, Attribute, STATUS_RESPONDER, Status, new_id, signature_template,
};
use crate::service::{Actor, Services, record};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use samael::crypto::{Crypto, CryptoProvider};
use serde_json::json;

/// How long an assertion may be presented.
const ASSERTION_LIFETIME: i64 = 300;

/// SAML's name for how the user signed in.
fn authn_class(amr: &[String]) -> String {
    match acr_for(amr) {
        crate::protocol::oidc::claims::ACR_PASSWORD => {
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport".into()
        }
        other => other.to_string(),
    }
}

impl Services {
    async fn name_id(&self, sp: &ServiceProvider, user: &User) -> Result<Option<String>> {
        Ok(match sp.nameid_format {
            NameIdFormat::Email => user.email.clone(),
            NameIdFormat::Unspecified => Some(user.username.to_string()),
            NameIdFormat::Persistent => {
                let salt = self.saml_salt().await?;
                let d = sha256_hex(format!("{salt}|{}|{}", sp.entity_id, user.id).as_bytes());
                Some(URL_SAFE_NO_PAD.encode(&d.as_bytes()[..24]))
            }
        })
    }

    /// A per-deployment secret that keeps persistent NameIDs unlinkable across SPs.
    async fn saml_salt(&self) -> Result<String> {
        const KEY: &str = "saml.persistent_salt";
        if let Some(s) = self.db(|r| r.meta(KEY)).await? {
            return Ok(s);
        }
        let fresh = crate::crypto::random_token();
        let f = fresh.clone();
        match self.db(move |r| r.insert_meta(KEY, &f)).await {
            Ok(()) => Ok(fresh),
            Err(e) if e.kind == ErrorKind::Conflict => self
                .db(|r| r.meta(KEY))
                .await?
                .ok_or_else(|| Error::internal("salt vanished")),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn assertion_response(
        &self,
        sp: &ServiceProvider,
        t: &SamlTx,
        session: &Session,
        user: &User,
        ip: Option<std::net::IpAddr>,
    ) -> Result<SamlPost> {
        let Some(name_id) = self.name_id(sp, user).await? else {
            let status = Status {
                code: STATUS_RESPONDER,
                sub_code: Some(resp::STATUS_INVALID_NAMEID_POLICY),
                message: Some("the user has no e-mail address"),
            };
            return self
                .error_response(
                    &t.acs_url,
                    t.request_id.as_deref(),
                    &status,
                    t.relay_state.clone(),
                )
                .await;
        };
        let ip = ip.map(|i| i.to_string());
        let subject = self
            .subject_for_issue(user.id.as_str(), ip.as_deref())
            .await?
            .ok_or_else(|| Error::not_found("user vanished"))?;
        let mut attributes: Vec<Attribute> = sp
            .attributes
            .iter()
            .filter_map(|m| {
                let values = match m.source.as_str() {
                    "email" => user.email.clone().into_iter().collect(),
                    "name" => vec![user.display_name.clone()],
                    "username" => vec![user.username.to_string()],
                    "id" => vec![user.id.to_string()],
                    "groups" => subject.groups.clone(),
                    "roles" => subject.roles.clone(),
                    _ => vec![],
                };
                (!values.is_empty()).then(|| Attribute {
                    name: m.name.clone(),
                    format: m.format.clone(),
                    values,
                })
            })
            .collect();
        // An active elevation is always released, under the SP's roles
        // attribute or, when it maps none, under `roles`.
        if !subject.elevations.is_empty() && !sp.attributes.iter().any(|m| m.source == "roles") {
            attributes.push(Attribute {
                name: "roles".into(),
                format: None,
                values: subject.elevations.iter().map(|e| e.role.clone()).collect(),
            });
        }
        let now = self.now();
        // Rule 2: neither the assertion nor the SP session outlives a window.
        let window_end = crate::service::pim::window_end(&subject.elevations);
        let cap = |t: chrono::DateTime<chrono::Utc>| window_end.map_or(t, |w| t.min(w));
        let urls = self.saml_urls();
        let class = authn_class(&session.amr);
        let session_index = resp::session_index_for(&session.id_digest, &sp.entity_id);
        let input = AssertionInput {
            idp_entity_id: &urls.entity_id,
            sp_entity_id: &sp.entity_id,
            acs_url: &t.acs_url,
            in_response_to: t.request_id.as_deref(),
            name_id: &name_id,
            name_id_format: sp.nameid_format.urn(),
            now,
            not_on_or_after: cap(now + chrono::Duration::seconds(ASSERTION_LIFETIME)),
            authn_instant: session.auth_time,
            session_index: &session_index,
            session_not_on_or_after: cap(session.expires_at),
            authn_context_class: &class,
            attributes: &attributes,
        };
        let input_not_on_or_after = input.session_not_on_or_after;
        let signer = self.saml_signer().await?;
        let assertion_id = new_id();
        let assertion = resp::assertion(
            &input,
            &assertion_id,
            sp.sign_assertion.then_some(signer.certificate.as_str()),
        );
        let xml = match &sp.encryption_cert {
            // Encrypted: the assertion is signed on its own, then encrypted,
            // then placed in the Response.
            Some(cert) => {
                let (key, cert, sign) = (
                    signer.private_key_der.clone(),
                    cert.clone(),
                    sp.sign_assertion,
                );
                let encrypted = Self::cpu(move || -> Result<String> {
                    let signed = if sign {
                        Crypto::sign_xml(&assertion, &key)
                            .map_err(|e| Error::internal(format!("SAML signing: {e}")))?
                    } else {
                        assertion
                    };
                    encrypt_assertion(strip_declaration(&signed), &cert).map_err(Error::internal)
                })
                .await??;
                self.sign_response(
                    &signer,
                    &t.acs_url,
                    t.request_id.as_deref(),
                    &resp::SUCCESS,
                    &encrypted,
                    false,
                    sp.sign_response,
                )
                .await?
            }
            None => {
                self.sign_response(
                    &signer,
                    &t.acs_url,
                    t.request_id.as_deref(),
                    &resp::SUCCESS,
                    &assertion,
                    sp.sign_assertion,
                    sp.sign_response,
                )
                .await?
            }
        };
        let to = crate::service::pim::Recipient {
            protocol: "saml",
            id: &sp.entity_id,
            session_digest: Some(&session.id_digest),
            grant_id: None,
            name_id: Some(&name_id),
            session_index: Some(&session_index),
        };
        self.record_elevated_issue(&subject.elevations, to, input_not_on_or_after)
            .await?;
        let (actor, sp_id, uid) = (
            Actor::user(user.username.as_str(), ip.clone()),
            sp.entity_id.clone(),
            user.id.to_string(),
        );
        let (sidx, class2) = (session_index.clone(), class.clone());
        let participant = crate::domain::SamlParticipant {
            session_digest: session.id_digest.clone(),
            entity_id: sp.entity_id.clone(),
            name_id: name_id.clone(),
            session_index: session_index.clone(),
            created_at: now,
        };
        self.db(move |r| {
            r.record_participant(&participant)?;
            record(
                r,
                now,
                &actor,
                "saml.sso",
                &sp_id,
                json!({"user": uid, "session_index": sidx, "authn_context": class2}),
            )
        })
        .await?;
        Ok(SamlPost {
            acs_url: t.acs_url.clone(),
            saml_response: STANDARD.encode(xml),
            relay_state: t.relay_state.clone(),
        })
    }

    /// Builds and signs a Response around `body`: the assertion's own
    /// signature first (when wanted), then the Response's over everything.
    #[allow(clippy::too_many_arguments)]
    async fn sign_response(
        &self,
        signer: &SamlSigner,
        destination: &str,
        in_response_to: Option<&str>,
        status: &Status<'_>,
        body: &str,
        assertion_signed: bool,
        response_signed: bool,
    ) -> Result<String> {
        let id = new_id();
        let urls = self.saml_urls();
        let unsigned = resp::response(
            &id,
            &urls.entity_id,
            destination,
            in_response_to,
            self.now(),
            status,
            None,
            body,
        );
        let key = signer.private_key_der.clone();
        let template = signature_template(&id, &signer.certificate);
        Self::cpu(move || -> Result<String> {
            let sign = |xml: &str| {
                Crypto::sign_xml(xml, &key)
                    .map_err(|e| Error::internal(format!("SAML signing: {e}")))
            };
            let mut xml = unsigned;
            if assertion_signed {
                xml = sign(&xml)?;
            }
            if response_signed {
                let with_template = resp::insert_after_first_issuer(&xml, &template)
                    .ok_or_else(|| Error::internal("response without issuer"))?;
                xml = sign(&with_template)?;
            }
            Ok(xml)
        })
        .await?
    }

    /// A signed Response carrying only a failure status.
    pub async fn error_response(
        &self,
        acs_url: &str,
        in_response_to: Option<&str>,
        status: &Status<'_>,
        relay_state: Option<String>,
    ) -> Result<SamlPost> {
        let signer = self.saml_signer().await?;
        let xml = self
            .sign_response(&signer, acs_url, in_response_to, status, "", false, true)
            .await?;
        Ok(SamlPost {
            acs_url: acs_url.to_string(),
            saml_response: STANDARD.encode(xml),
            relay_state,
        })
    }
}

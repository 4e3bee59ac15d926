//! SP-initiated (Redirect and POST bindings) and IdP-initiated SSO.

use super::certs::SamlSigner;
use crate::crypto::sha256_hex;
use crate::domain::{Binding, NameIdFormat, ServiceProvider, Session, User};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::claims::{acr_for, sid_for};
use crate::protocol::saml::encrypt::{encrypt_assertion, strip_declaration};
use crate::protocol::saml::metadata::IdpUrls;
use crate::protocol::saml::request::{self, requested_classes};
use crate::protocol::saml::response::{
    self as resp, AssertionInput, Attribute, STATUS_NO_PASSIVE, STATUS_REQUEST_DENIED,
    STATUS_REQUESTER, STATUS_RESPONDER, Status, new_id, signature_template,
};
use crate::service::{Actor, Services, record};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, UrlVerifier};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// Marks a transaction whose current session must be replaced by a new sign-in.
const FORCE: &str = "force";
const TX_TTL: Duration = Duration::from_secs(30 * 60);
const REPLAY_TTL: Duration = Duration::from_secs(30 * 60);
/// How long an assertion may be presented.
const ASSERTION_LIFETIME: i64 = 300;

/// An incoming AuthnRequest as the binding delivered it.
#[derive(Debug, Clone)]
pub struct SamlRequestIn {
    pub binding: Binding,
    pub saml_request: String,
    pub relay_state: Option<String>,
    /// The raw query string (HTTP-Redirect), for the signature check.
    pub raw_query: Option<String>,
}

/// A Response to deliver by auto-submitting form.
#[derive(Debug, Clone)]
pub struct SamlPost {
    pub acs_url: String,
    pub saml_response: String,
    pub relay_state: Option<String>,
}

#[derive(Debug)]
pub enum SsoOutcome {
    Page(Error),
    Login {
        resume: String,
        reauth: bool,
    },
    Post(SamlPost),
    /// Continue at this same-site URL: a POST from the SP carries no
    /// SameSite=Lax session cookie, the following GET does.
    Resume(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SamlTx {
    sp: String,
    request_id: Option<String>,
    acs_url: String,
    relay_state: Option<String>,
    is_passive: bool,
    stale_session: Option<String>,
    requested_classes: Vec<String>,
}

fn tx_key(tx: &str) -> String {
    format!("saml-tx:{}", sha256_hex(tx.as_bytes()))
}

fn page(msg: impl Into<String>) -> SsoOutcome {
    SsoOutcome::Page(Error::invalid(msg))
}

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
    fn saml_urls(&self) -> IdpUrls {
        IdpUrls::for_issuer(&self.issuer)
    }

    /// The IdP metadata document.
    pub async fn saml_metadata(&self) -> Result<String> {
        Ok(crate::protocol::saml::metadata::idp_metadata(
            &self.saml_urls(),
            &self.saml_metadata_certs().await?,
        ))
    }

    /// Handles an AuthnRequest from either binding.
    pub async fn saml_sso(
        &self,
        input: SamlRequestIn,
        session: Option<(Session, User)>,
    ) -> Result<SsoOutcome> {
        let deferred = input.binding == Binding::Post;
        let decoded = match input.binding {
            Binding::Redirect => request::decode_redirect(&input.saml_request),
            Binding::Post => request::decode_post(&input.saml_request),
        };
        let xml = match decoded {
            Ok(x) => x,
            Err(e) => return Ok(page(e)),
        };
        let req = match request::parse(&xml) {
            Ok(r) => r,
            Err(e) => return Ok(page(e)),
        };
        let Some(issuer) = req.issuer.as_ref().and_then(|i| i.value.clone()) else {
            return Ok(page(
                "The AuthnRequest does not say which service provider sent it.",
            ));
        };
        let Some(sp) = self.sp(&issuer).await? else {
            return Ok(page(format!(
                "The service provider {issuer} is not registered here."
            )));
        };
        let acs_index = req
            .assertion_consumer_service_index
            .and_then(|i| u16::try_from(i).ok());
        let Some(acs) = sp
            .acs_for(req.assertion_consumer_service_url.as_deref(), acs_index)
            .cloned()
        else {
            return Ok(page(
                "The AssertionConsumerServiceURL is not registered for this service provider.",
            ));
        };
        // From here the ACS is trusted: failures go back to it as SAML errors.
        let deny = |code: &'static str, sub: Option<&'static str>, msg: String| (code, sub, msg);
        let problem = if let Err(e) = request::check(&req, &self.saml_urls().sso, self.now()) {
            Some(deny(STATUS_REQUESTER, Some(STATUS_REQUEST_DENIED), e))
        } else if let Err(e) = self.check_request_signature(&sp, &input, &xml, &req) {
            Some(deny(STATUS_REQUESTER, Some(STATUS_REQUEST_DENIED), e))
        } else if !self
            .ephemeral
            .put_if_absent(
                &format!(
                    "saml-req:{}:{}",
                    sha256_hex(sp.entity_id.as_bytes()),
                    sha256_hex(req.id.as_bytes())
                ),
                b"1",
                REPLAY_TTL,
            )
            .await?
        {
            Some(deny(
                STATUS_REQUESTER,
                Some(STATUS_REQUEST_DENIED),
                "this AuthnRequest was already used".into(),
            ))
        } else {
            None
        };
        if let Some((code, sub, msg)) = problem {
            tracing::info!(sp = %sp.entity_id, reason = %msg, "SAML request refused");
            let status = Status {
                code,
                sub_code: sub,
                message: Some(&msg),
            };
            return Ok(SsoOutcome::Post(
                self.error_response(&acs.url, Some(&req.id), &status, input.relay_state)
                    .await?,
            ));
        }
        // ForceAuthn: whatever session exists when the user continues is too old.
        let stale = req.force_authn.unwrap_or(false).then(|| FORCE.to_string());
        let tx = crate::crypto::random_token();
        let t = SamlTx {
            sp: sp.entity_id.clone(),
            request_id: Some(req.id.clone()),
            acs_url: acs.url.clone(),
            relay_state: input.relay_state.clone(),
            is_passive: req.is_passive.unwrap_or(false),
            stale_session: stale,
            requested_classes: requested_classes(&req),
        };
        self.put_saml_tx(&tx, &t).await?;
        if deferred {
            return Ok(SsoOutcome::Resume(format!("/saml/resume?tx={tx}")));
        }
        self.saml_continue(&tx, session).await
    }

    fn check_request_signature(
        &self,
        sp: &ServiceProvider,
        input: &SamlRequestIn,
        xml: &str,
        req: &samael::schema::AuthnRequest,
    ) -> std::result::Result<(), String> {
        let certs: Vec<Vec<u8>> = sp
            .signing_certs
            .iter()
            .filter_map(|c| STANDARD.decode(c).ok())
            .collect();
        match input.binding {
            Binding::Redirect => {
                let query = input.raw_query.as_deref().unwrap_or("");
                let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect();
                let has = |k: &str| pairs.iter().any(|(n, _)| n == k);
                if !(has("Signature") && has("SigAlg")) {
                    return if sp.want_authn_requests_signed {
                        Err("the AuthnRequest must be signed".into())
                    } else {
                        Ok(())
                    };
                }
                let uri = format!("/saml/sso?{query}");
                let ok = certs.iter().any(|der| {
                    UrlVerifier::from_x509(&CertificateDer::from(der.clone()))
                        .ok()
                        .and_then(|v| v.verify_percent_encoded_request_uri_string(&uri).ok())
                        .unwrap_or(false)
                });
                if ok {
                    Ok(())
                } else {
                    Err("the AuthnRequest signature is not valid".into())
                }
            }
            Binding::Post => {
                let Some(sig) = &req.signature else {
                    return if sp.want_authn_requests_signed {
                        Err("the AuthnRequest must be signed".into())
                    } else {
                        Ok(())
                    };
                };
                // The signature must cover the request element itself, not
                // something else in the document (signature wrapping).
                let refs_root = sig.signed_info.reference.len() == 1
                    && sig.signed_info.reference[0].uri.as_deref() == Some(&format!("#{}", req.id));
                let ok = refs_root
                    && certs.iter().any(|der| {
                        Crypto::verify_signed_xml(
                            xml,
                            &CertificateDer::from(der.clone()),
                            Some("ID"),
                        )
                        .is_ok()
                    });
                if ok {
                    Ok(())
                } else {
                    Err("the AuthnRequest signature is not valid".into())
                }
            }
        }
    }

    async fn put_saml_tx(&self, tx: &str, t: &SamlTx) -> Result<()> {
        let bytes = serde_json::to_vec(t).map_err(|e| Error::internal(e.to_string()))?;
        self.ephemeral.put_ttl(&tx_key(tx), &bytes, TX_TTL).await
    }

    /// IdP-initiated SSO to `sp_entity_id`.
    pub async fn saml_idp_init(
        &self,
        sp_entity_id: &str,
        relay_state: Option<String>,
        session: Option<(Session, User)>,
    ) -> Result<SsoOutcome> {
        let Some(sp) = self.sp(sp_entity_id).await? else {
            return Ok(page(format!(
                "The service provider {sp_entity_id} is not registered here."
            )));
        };
        let acs = sp
            .acs_for(None, None)
            .cloned()
            .ok_or_else(|| Error::internal("SP without ACS"))?;
        let tx = crate::crypto::random_token();
        let t = SamlTx {
            sp: sp.entity_id,
            request_id: None,
            acs_url: acs.url,
            relay_state,
            is_passive: false,
            stale_session: None,
            requested_classes: vec![],
        };
        self.put_saml_tx(&tx, &t).await?;
        self.saml_continue(&tx, session).await
    }

    /// Continues after the user signed in.
    pub async fn saml_continue(
        &self,
        tx: &str,
        session: Option<(Session, User)>,
    ) -> Result<SsoOutcome> {
        let gone = || {
            Error::invalid(
                "This sign-in request has expired or was already completed. Go back to the application and start again.",
            )
        };
        let bytes = self.ephemeral.get(&tx_key(tx)).await?.ok_or_else(gone)?;
        let t: SamlTx = serde_json::from_slice(&bytes).map_err(|_| gone())?;
        let mut t = t;
        if t.stale_session.as_deref() == Some(FORCE) {
            // Pin the session present now; only a fresh sign-in replaces it.
            t.stale_session = Some(
                session
                    .as_ref()
                    .map(|(s, _)| s.id_digest.clone())
                    .unwrap_or_default(),
            );
            self.put_saml_tx(tx, &t).await?;
        }
        let Some((session, user)) =
            session.filter(|(s, _)| Some(&s.id_digest) != t.stale_session.as_ref())
        else {
            if t.is_passive {
                self.ephemeral.delete(&tx_key(tx)).await?;
                let status = Status {
                    code: STATUS_RESPONDER,
                    sub_code: Some(STATUS_NO_PASSIVE),
                    message: Some("the user is not signed in"),
                };
                return Ok(SsoOutcome::Post(
                    self.error_response(
                        &t.acs_url,
                        t.request_id.as_deref(),
                        &status,
                        t.relay_state,
                    )
                    .await?,
                ));
            }
            return Ok(SsoOutcome::Login {
                resume: format!("/saml/resume?tx={tx}"),
                reauth: t.stale_session.is_some(),
            });
        };
        if self.ephemeral.take(&tx_key(tx)).await?.is_none() {
            return Err(gone());
        }
        let sp = self
            .sp(&t.sp)
            .await?
            .ok_or_else(|| Error::not_found("the service provider was removed"))?;
        let post = self.assertion_response(&sp, &t, &session, &user).await?;
        Ok(SsoOutcome::Post(post))
    }

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

    async fn assertion_response(
        &self,
        sp: &ServiceProvider,
        t: &SamlTx,
        session: &Session,
        user: &User,
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
        let subject = self
            .subject(user.id.as_str())
            .await?
            .ok_or_else(|| Error::not_found("user vanished"))?;
        let attributes: Vec<Attribute> = sp
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
        let now = self.now();
        let urls = self.saml_urls();
        let class = authn_class(&session.amr);
        let session_index = sid_for(&session.id_digest);
        let input = AssertionInput {
            idp_entity_id: &urls.entity_id,
            sp_entity_id: &sp.entity_id,
            acs_url: &t.acs_url,
            in_response_to: t.request_id.as_deref(),
            name_id: &name_id,
            name_id_format: sp.nameid_format.urn(),
            now,
            not_on_or_after: now + chrono::Duration::seconds(ASSERTION_LIFETIME),
            authn_instant: session.auth_time,
            session_index: &session_index,
            session_not_on_or_after: session.expires_at,
            authn_context_class: &class,
            attributes: &attributes,
        };
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
        let (actor, sp_id, uid) = (
            Actor::user(user.username.as_str(), None),
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

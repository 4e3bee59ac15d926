//! Single logout: SP-initiated (a LogoutRequest ends the IdP session, the
//! other SPs in it are told in turn, then the requester gets its
//! LogoutResponse) and IdP-initiated (signing out at the IdP tells every SP).

use crate::crypto::sha256_hex;
use crate::domain::{Binding, SamlParticipant, ServiceProvider};
use crate::error::{Error, Result};
use crate::protocol::saml::logout::{self, LogoutMessage};
use crate::protocol::saml::request::{decode_post, decode_redirect};
use crate::protocol::saml::response::{
    STATUS_REQUEST_DENIED, STATUS_REQUESTER, STATUS_SUCCESS, SUCCESS, Status, signature_template,
};
use crate::service::Services;
use crate::service::saml::verify::{self, Carries};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::{Crypto, CryptoProvider};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::time::Duration;

const CHAIN_TTL: Duration = Duration::from_secs(10 * 60);

/// A SAML message on its way to an SP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    /// An auto-submitting form: `field` is SAMLRequest or SAMLResponse.
    Post {
        url: String,
        field: &'static str,
        value: String,
        relay_state: Option<String>,
    },
    /// A signed HTTP-Redirect URL.
    Redirect(String),
}

#[derive(Debug)]
pub enum SloOutcome {
    Page(Error),
    Send(Outgoing),
    /// Nothing more to tell anyone: show the browser this local page.
    Done(String),
}

/// An incoming SLO message as a binding delivered it.
#[derive(Debug, Clone)]
pub struct SloIn {
    pub binding: Binding,
    pub request: Option<String>,
    pub response: Option<String>,
    pub relay_state: Option<String>,
    pub raw_query: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Requester {
    entity_id: String,
    request_id: String,
    relay_state: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Chain {
    remaining: Vec<(String, String, String)>,
    requester: Option<Requester>,
    pending: Option<String>,
    /// Where the browser goes once every SP was told (IdP-initiated).
    #[serde(default = "signed_out")]
    finish: String,
}

fn signed_out() -> String {
    "/login?signed_out=1".into()
}

fn chain_key(id: &str) -> String {
    format!("slo:{}", sha256_hex(id.as_bytes()))
}

/// An XML signature template for messages sent by POST; the Redirect
/// binding signs the query instead.
fn template_for(post: bool, id: &str, cert: &str) -> String {
    if post {
        signature_template(id, cert)
    } else {
        String::new()
    }
}

fn deflate_b64(xml: &str) -> Result<String> {
    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(xml.as_bytes())
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok(STANDARD.encode(e.finish().map_err(|e| Error::internal(e.to_string()))?))
}

impl Services {
    /// Handles whatever arrived at `/saml/slo`.
    pub async fn saml_slo(&self, input: SloIn) -> Result<SloOutcome> {
        let is_request = input.request.is_some();
        let encoded = input
            .request
            .clone()
            .or(input.response.clone())
            .unwrap_or_default();
        let xml = match input.binding {
            Binding::Redirect => decode_redirect(&encoded),
            Binding::Post => decode_post(&encoded),
        };
        let xml = match xml {
            Ok(x) => x,
            Err(e) => return Ok(SloOutcome::Page(Error::invalid(e))),
        };
        let root = if is_request {
            "LogoutRequest"
        } else {
            "LogoutResponse"
        };
        let msg = match logout::parse(&xml, root) {
            Ok(m) => m,
            Err(e) => return Ok(SloOutcome::Page(Error::invalid(e))),
        };
        let Some(sp) = self.sp(&msg.issuer).await? else {
            return Ok(SloOutcome::Page(Error::invalid(format!(
                "The service provider {} is not registered here.",
                msg.issuer
            ))));
        };
        let checked = self
            .check_slo_message(&sp, &input, &xml, &msg)
            .and_then(|()| {
                if is_request {
                    logout::request_name_id(&msg).map(|_| ())
                } else {
                    Ok(())
                }
            });
        if let Err(e) = checked {
            tracing::info!(sp = %sp.entity_id, reason = %e, "SAML logout message refused");
            if is_request {
                return self.refuse_logout(&sp, &msg, input.relay_state, &e).await;
            }
            return Ok(SloOutcome::Page(Error::invalid(e)));
        }
        if is_request {
            self.slo_request(&sp, &msg, input.relay_state).await
        } else {
            self.slo_response(&msg, input.relay_state).await
        }
    }

    /// Signature, timing and Destination of an SLO message, and whether an
    /// unsigned one is acceptable from this SP: an SP with a signing
    /// certificate must sign; one without may send unsigned LogoutRequests
    /// only when registered to allow them (its LogoutResponses only answer
    /// a request of ours, bound by RelayState and InResponseTo).
    fn check_slo_message(
        &self,
        sp: &ServiceProvider,
        input: &SloIn,
        xml: &str,
        msg: &LogoutMessage,
    ) -> std::result::Result<(), String> {
        let certs = verify::sp_certs(sp);
        let carries = if input.request.is_some() {
            Carries::Request
        } else {
            Carries::Response
        };
        // Without a certificate nothing can be verified: such a message
        // counts as unsigned whatever it carries.
        let signed = if certs.is_empty() {
            false
        } else {
            match input.binding {
                Binding::Redirect => verify::redirect(
                    &certs,
                    "/saml/slo",
                    input.raw_query.as_deref().unwrap_or(""),
                    carries,
                ),
                Binding::Post => verify::post(&certs, xml, msg.signed),
            }
            .map_err(|e| format!("the logout message's signature is not valid ({e})"))?
        };
        logout::check_message(msg, &self.saml_urls().slo, self.now(), signed)?;
        if signed || carries == Carries::Response && certs.is_empty() {
            return Ok(());
        }
        if !certs.is_empty() {
            return Err("the logout message is not signed by the service provider".into());
        }
        if !sp.allow_unsigned_logout {
            return Err(
                "unsigned logout requests are not accepted from this service provider: \
register its signing certificate, or allow it unsigned logout"
                    .into(),
            );
        }
        Ok(())
    }

    /// Answers a refused LogoutRequest with a LogoutResponse saying why
    /// (Requester / RequestDenied), or with a page when the SP has no
    /// logout endpoint. Nothing was ended.
    async fn refuse_logout(
        &self,
        sp: &ServiceProvider,
        msg: &LogoutMessage,
        relay_state: Option<String>,
        why: &str,
    ) -> Result<SloOutcome> {
        let (Some(url), Some(binding)) = (sp.slo_url.clone(), sp.slo_binding) else {
            return Ok(SloOutcome::Page(Error::invalid(why.to_string())));
        };
        let status = Status {
            code: STATUS_REQUESTER,
            sub_code: Some(STATUS_REQUEST_DENIED),
            message: Some(why),
        };
        self.send_logout_response(&url, binding, &msg.id, &status, relay_state)
            .await
    }

    /// A signed LogoutResponse answering `in_response_to` with `status`,
    /// sent to the SP's logout endpoint.
    async fn send_logout_response(
        &self,
        url: &str,
        binding: Binding,
        in_response_to: &str,
        status: &Status<'_>,
        relay_state: Option<String>,
    ) -> Result<SloOutcome> {
        let signer = self.saml_signer().await?;
        let cert = signer.certificate.clone();
        let post = binding == Binding::Post;
        let xml = logout::logout_response(
            &self.saml_urls().entity_id,
            url,
            in_response_to,
            status,
            self.now(),
            |id| template_for(post, id, &cert),
        );
        Ok(SloOutcome::Send(self.outgoing(
            &signer.private_key_der,
            binding,
            url,
            "SAMLResponse",
            &xml,
            relay_state,
        )?))
    }

    async fn slo_request(
        &self,
        sp: &ServiceProvider,
        msg: &LogoutMessage,
        relay_state: Option<String>,
    ) -> Result<SloOutcome> {
        let requester = Requester {
            entity_id: sp.entity_id.clone(),
            request_id: msg.id.clone(),
            relay_state,
        };
        let (entity, indexes) = (sp.entity_id.clone(), msg.session_indexes.clone());
        let found = self
            .db(move |r| {
                for i in &indexes {
                    if let Some(p) = r.participant_by_index(&entity, i)? {
                        return Ok(Some(p));
                    }
                }
                Ok(None)
            })
            .await?;
        let mut remaining = Vec::new();
        // The SessionIndex this SP was given, and the NameID it was given
        // with it: another SP's logout names neither.
        if let Some(p) = found.filter(|p| msg.name_id.as_deref() == Some(p.name_id.as_str())) {
            remaining = self
                .end_saml_session(&p.session_digest, "saml.slo", None)
                .await?;
            remaining.retain(|(e, _, _)| *e != sp.entity_id);
        }
        let chain = Chain {
            remaining,
            requester: Some(requester),
            pending: None,
            finish: signed_out(),
        };
        self.next_in_chain(&crate::crypto::random_token(), chain)
            .await
    }

    /// Ends a session and returns the other SPs to tell (entity, NameID, SessionIndex).
    async fn end_saml_session(
        &self,
        digest: &str,
        action: &'static str,
        ip: Option<String>,
    ) -> Result<Vec<(String, String, String)>> {
        let d = digest.to_string();
        let (participants, user) = self
            .db(move |r| {
                let ps: Vec<SamlParticipant> = r.participants(&d)?;
                let user = match r.session(&d)? {
                    Some(s) => r.user_by_id(&s.user_id)?,
                    None => None,
                };
                Ok((ps, user))
            })
            .await?;
        if let Some(user) = user {
            self.end_session(digest, &user, ip, action).await?;
        }
        Ok(participants
            .into_iter()
            .map(|p| (p.entity_id, p.name_id, p.session_index))
            .collect())
    }

    /// IdP-initiated: after the user signed out here, the SPs of that session
    /// are told one after the other, then the browser goes to `finish` (a
    /// local path or a validated post-logout redirect URI). `None` when there
    /// is nobody to tell.
    pub async fn saml_logout_everywhere(
        &self,
        session_digest: &str,
        finish: &str,
        ip: Option<String>,
    ) -> Result<Option<Outgoing>> {
        let remaining = self.end_saml_session(session_digest, "logout", ip).await?;
        if remaining.is_empty() {
            return Ok(None);
        }
        match self
            .next_in_chain(
                &crate::crypto::random_token(),
                Chain {
                    remaining,
                    requester: None,
                    pending: None,
                    finish: finish.to_string(),
                },
            )
            .await?
        {
            SloOutcome::Send(o) => Ok(Some(o)),
            _ => Ok(None),
        }
    }

    async fn slo_response(
        &self,
        msg: &LogoutMessage,
        relay_state: Option<String>,
    ) -> Result<SloOutcome> {
        let Some(chain_id) = relay_state else {
            return Ok(SloOutcome::Done("/login?signed_out=1".into()));
        };
        let Some(bytes) = self.ephemeral.take(&chain_key(&chain_id)).await? else {
            return Ok(SloOutcome::Done("/login?signed_out=1".into()));
        };
        let chain: Chain =
            serde_json::from_slice(&bytes).map_err(|e| Error::internal(e.to_string()))?;
        if chain.pending.as_deref() != msg.in_response_to.as_deref() {
            return Ok(SloOutcome::Page(Error::invalid(
                "This logout response does not answer the request that was sent.",
            )));
        }
        if msg.status.as_deref() != Some(STATUS_SUCCESS) {
            tracing::warn!(sp = %msg.issuer, status = ?msg.status, "a service provider reported a failed logout");
        }
        self.next_in_chain(&chain_id, chain).await
    }

    /// Tells the next SP, or answers the requester, or finishes.
    async fn next_in_chain(&self, chain_id: &str, mut chain: Chain) -> Result<SloOutcome> {
        while let Some((entity, name_id, session_index)) = chain.remaining.first().cloned() {
            chain.remaining.remove(0);
            let Some(sp) = self.sp(&entity).await? else {
                continue;
            };
            let (Some(url), Some(binding)) = (sp.slo_url.clone(), sp.slo_binding) else {
                continue;
            };
            let signer = self.saml_signer().await?;
            let idp = self.saml_urls().entity_id;
            let post = binding == Binding::Post;
            let cert = signer.certificate.clone();
            let (id, xml) = logout::logout_request(
                &idp,
                &url,
                &name_id,
                sp.nameid_format.urn(),
                &sp.entity_id,
                &session_index,
                self.now(),
                |id| template_for(post, id, &cert),
            );
            chain.pending = Some(id);
            let bytes = serde_json::to_vec(&chain).map_err(|e| Error::internal(e.to_string()))?;
            self.ephemeral
                .put_ttl(&chain_key(chain_id), &bytes, CHAIN_TTL)
                .await?;
            let out = self.outgoing(
                &signer.private_key_der,
                binding,
                &url,
                "SAMLRequest",
                &xml,
                Some(chain_id.to_string()),
            )?;
            return Ok(SloOutcome::Send(out));
        }
        let Some(req) = chain.requester else {
            return Ok(SloOutcome::Done(chain.finish));
        };
        let sp = self
            .sp(&req.entity_id)
            .await?
            .ok_or_else(|| Error::not_found("the service provider was removed"))?;
        let (Some(url), Some(binding)) = (sp.slo_url.clone(), sp.slo_binding) else {
            return Ok(SloOutcome::Done("/login?signed_out=1".into()));
        };
        self.send_logout_response(&url, binding, &req.request_id, &SUCCESS, req.relay_state)
            .await
    }

    /// Builds, signs and POSTs one SOAP LogoutRequest (an outbox attempt).
    pub(crate) async fn send_saml_soap_logout(
        &self,
        url: &str,
        n: &crate::service::outbox::SoapLogoutNotice,
    ) -> std::result::Result<u16, String> {
        let sp = match self.sp(&n.entity_id).await {
            Ok(Some(sp)) => sp,
            Ok(None) => return Err("the service provider no longer exists".into()),
            Err(e) => return Err(e.to_string()),
        };
        let signer = self.saml_signer().await.map_err(|e| e.to_string())?;
        let cert = signer.certificate.clone();
        let (_, xml) = logout::logout_request(
            &self.saml_urls().entity_id,
            url,
            &n.name_id,
            sp.nameid_format.urn(),
            &sp.entity_id,
            &n.session_index,
            self.now(),
            |id| template_for(true, id, &cert),
        );
        let signed = Crypto::sign_xml(&xml, &signer.private_key_der)
            .map_err(|e| format!("SAML signing: {e}"))?;
        let body = format!(
            "<soap11:Envelope xmlns:soap11=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap11:Body>{}</soap11:Body></soap11:Envelope>",
            crate::protocol::saml::encrypt::strip_declaration(&signed)
        );
        self.http
            .post(url)
            .timeout(std::time::Duration::from_secs(5))
            .header("Content-Type", "text/xml; charset=utf-8")
            .header(
                "SOAPAction",
                "http://www.oasis-open.org/committees/security",
            )
            .body(body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    }

    /// Encodes and signs a message for its binding: an XML signature inside
    /// for POST, a query signature for Redirect.
    fn outgoing(
        &self,
        key_der: &[u8],
        binding: Binding,
        url: &str,
        field: &'static str,
        xml: &str,
        relay_state: Option<String>,
    ) -> Result<Outgoing> {
        match binding {
            Binding::Post => {
                let signed = Crypto::sign_xml(xml, key_der)
                    .map_err(|e| Error::internal(format!("SAML signing: {e}")))?;
                Ok(Outgoing::Post {
                    url: url.to_string(),
                    field,
                    value: STANDARD.encode(signed),
                    relay_state,
                })
            }
            Binding::Redirect => {
                let mut u =
                    url::Url::parse(url).map_err(|e| Error::internal(format!("SLO URL: {e}")))?;
                u.query_pairs_mut().append_pair(field, &deflate_b64(xml)?);
                if let Some(r) = &relay_state {
                    u.query_pairs_mut().append_pair("RelayState", r);
                }
                let key = openssl::rsa::Rsa::private_key_from_der(key_der)
                    .and_then(openssl::pkey::PKey::from_rsa)
                    .map_err(|e| Error::internal(format!("SAML key: {e}")))?;
                let signed = samael::crypto::sign_url(u, &key)
                    .map_err(|e| Error::internal(format!("SAML signing: {e}")))?;
                Ok(Outgoing::Redirect(signed.to_string()))
            }
        }
    }
}

//! SP-initiated (Redirect and POST bindings) and IdP-initiated SSO.

use super::verify;
use crate::crypto::sha256_hex;
use crate::domain::{Binding, ServiceProvider, Session, User};
use crate::error::{Error, Result};
use crate::protocol::oidc::claims::needs_step_up;
use crate::protocol::saml::metadata::IdpUrls;
use crate::protocol::saml::request::{self, requested_classes};
use crate::protocol::saml::response::{
    STATUS_NO_AUTHN_CONTEXT, STATUS_NO_PASSIVE, STATUS_REQUEST_DENIED, STATUS_REQUESTER,
    STATUS_RESPONDER, Status,
};
use crate::service::Services;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// Marks a transaction whose current session must be replaced by a new sign-in.
const FORCE: &str = "force";
const TX_TTL: Duration = Duration::from_secs(30 * 60);
const REPLAY_TTL: Duration = Duration::from_secs(30 * 60);

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
    /// A privileged SP and no active elevation: offer to request `role`
    /// (as `gate` allows), then continue at `resume`.
    NeedsElevation {
        role: String,
        app: String,
        resume: String,
        gate: crate::service::pim::Gate,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SamlTx {
    pub(super) sp: String,
    pub(super) request_id: Option<String>,
    pub(super) acs_url: String,
    pub(super) relay_state: Option<String>,
    pub(super) is_passive: bool,
    pub(super) stale_session: Option<String>,
    pub(super) requested_classes: Vec<String>,
    /// SHA-256 of the binding cookie of the browser that brought the
    /// request: no other browser may continue it.
    #[serde(default)]
    pub(super) browser: String,
}

fn tx_key(tx: &str) -> String {
    format!("saml-tx:{}", sha256_hex(tx.as_bytes()))
}

/// Whether the AuthnRequest's signature verified (`Ok(false)`: unsigned and
/// the SP allows that); an error refuses the request.
fn check_request_signature(
    sp: &ServiceProvider,
    input: &SamlRequestIn,
    xml: &str,
    xml_signed: bool,
) -> std::result::Result<bool, String> {
    let certs = verify::sp_certs(sp);
    let signed = match input.binding {
        Binding::Redirect => verify::redirect(
            &certs,
            "/saml/sso",
            input.raw_query.as_deref().unwrap_or(""),
            verify::Carries::Request,
        ),
        Binding::Post => verify::post(&certs, xml, xml_signed),
    }
    .map_err(|e| format!("the AuthnRequest signature is not valid ({e})"))?;
    if !signed && sp.want_authn_requests_signed {
        return Err("the AuthnRequest must be signed".into());
    }
    Ok(signed)
}

fn page(msg: impl Into<String>) -> SsoOutcome {
    SsoOutcome::Page(Error::invalid(msg))
}

impl Services {
    pub(super) fn saml_urls(&self) -> IdpUrls {
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
        browser: &str,
        ip: Option<IpAddr>,
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
        let (req, shape) = match request::parse(&xml) {
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
        let checked = check_request_signature(&sp, &input, &xml, shape.signed)
            .and_then(|signed| request::check(&req, &self.saml_urls().sso, self.now(), signed));
        let problem = if let Err(e) = checked {
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
        self.spend_start(ip.map(|i| i.to_string()).as_deref())
            .await?;
        let tx = crate::crypto::random_token();
        let t = SamlTx {
            sp: sp.entity_id.clone(),
            request_id: Some(req.id.clone()),
            acs_url: acs.url.clone(),
            relay_state: input.relay_state.clone(),
            is_passive: req.is_passive.unwrap_or(false),
            stale_session: stale,
            requested_classes: requested_classes(&req),
            browser: sha256_hex(browser.as_bytes()),
        };
        self.put_saml_tx(&tx, &t).await?;
        if deferred {
            return Ok(SsoOutcome::Resume(format!("/saml/resume?tx={tx}")));
        }
        self.saml_continue(&tx, session, browser, ip).await
    }

    async fn put_saml_tx(&self, tx: &str, t: &SamlTx) -> Result<()> {
        let bytes = serde_json::to_vec(t).map_err(|e| Error::internal(e.to_string()))?;
        self.ephemeral.begin(&tx_key(tx), &bytes, TX_TTL).await
    }

    /// IdP-initiated SSO to `sp_entity_id`.
    pub async fn saml_idp_init(
        &self,
        sp_entity_id: &str,
        relay_state: Option<String>,
        session: Option<(Session, User)>,
        browser: &str,
        ip: Option<IpAddr>,
    ) -> Result<SsoOutcome> {
        let relay_state = relay_state.filter(|r| !r.is_empty());
        if let Some(r) = &relay_state
            && let Err(e) = request::check_idp_relay_state(r)
        {
            return Ok(page(e));
        }
        let Some(sp) = self.sp(sp_entity_id).await? else {
            return Ok(page(format!(
                "The service provider {sp_entity_id} is not registered here."
            )));
        };
        let acs = sp
            .acs_for(None, None)
            .cloned()
            .ok_or_else(|| Error::internal("SP without ACS"))?;
        self.spend_start(ip.map(|i| i.to_string()).as_deref())
            .await?;
        let tx = crate::crypto::random_token();
        let t = SamlTx {
            sp: sp.entity_id,
            request_id: None,
            acs_url: acs.url,
            relay_state,
            is_passive: false,
            stale_session: None,
            requested_classes: vec![],
            browser: sha256_hex(browser.as_bytes()),
        };
        self.put_saml_tx(&tx, &t).await?;
        self.saml_continue(&tx, session, browser, ip).await
    }

    /// Ends the transaction with a Responder status sent back to the ACS.
    async fn refuse(
        &self,
        tx: &str,
        t: SamlTx,
        sub_code: &'static str,
        msg: &str,
    ) -> Result<SsoOutcome> {
        self.ephemeral.delete(&tx_key(tx)).await?;
        let status = Status {
            code: STATUS_RESPONDER,
            sub_code: Some(sub_code),
            message: Some(msg),
        };
        Ok(SsoOutcome::Post(
            self.error_response(&t.acs_url, t.request_id.as_deref(), &status, t.relay_state)
                .await?,
        ))
    }

    /// Continues after the user signed in.
    pub async fn saml_continue(
        &self,
        tx: &str,
        session: Option<(Session, User)>,
        browser: &str,
        ip: Option<IpAddr>,
    ) -> Result<SsoOutcome> {
        let gone = || {
            Error::invalid(
                "This sign-in request has expired or was already completed. Go back to the application and start again.",
            )
        };
        let bytes = self.ephemeral.get(&tx_key(tx)).await?.ok_or_else(gone)?;
        let t: SamlTx = serde_json::from_slice(&bytes).map_err(|_| gone())?;
        crate::service::same_browser(&t.browser, browser)?;
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
                return self
                    .refuse(tx, t, STATUS_NO_PASSIVE, "the user is not signed in")
                    .await;
            }
            return Ok(SsoOutcome::Login {
                resume: format!("/saml/resume?tx={tx}"),
                reauth: t.stale_session.is_some(),
            });
        };
        let sp = self
            .sp(&t.sp)
            .await?
            .ok_or_else(|| Error::not_found("the service provider was removed"))?;
        // Too weak for the application's policy or for what the SP asked:
        // one chance to sign in again (with the second factor, where there
        // is one), then a refusal naming what was missing.
        let policy = self.required_acr(&user, sp.required_acr.as_deref()).await?;
        let shortfall = match policy {
            Some(level) if needs_step_up(std::slice::from_ref(&level), &session.amr) => Some((
                STATUS_REQUEST_DENIED,
                format!("{} requires signing in with {level}", sp.name),
            )),
            _ if needs_step_up(&t.requested_classes, &session.amr) => Some((
                STATUS_NO_AUTHN_CONTEXT,
                "the requested authentication context cannot be met".to_string(),
            )),
            _ => None,
        };
        if let Some((sub_code, msg)) = shortfall {
            if t.stale_session.is_none() {
                t.stale_session = Some(session.id_digest.clone());
                self.put_saml_tx(tx, &t).await?;
                return Ok(SsoOutcome::Login {
                    resume: format!("/saml/resume?tx={tx}"),
                    reauth: true,
                });
            }
            return self.refuse(tx, t, sub_code, &msg).await;
        }
        if let Some(role) = sp.required_role.clone()
            && let Some(gate) = self.elevation_gate(&user, &role, &sp.entity_id, ip).await?
        {
            if t.is_passive {
                let msg = format!("{} needs an active elevation of {role}", sp.name);
                return self.refuse(tx, t, STATUS_REQUEST_DENIED, &msg).await;
            }
            return Ok(SsoOutcome::NeedsElevation {
                role,
                app: sp.name.clone(),
                resume: format!("/saml/resume?tx={tx}"),
                gate,
            });
        }
        if self.ephemeral.take(&tx_key(tx)).await?.is_none() {
            return Err(gone());
        }

        let post = self
            .assertion_response(&sp, &t, &session, &user, ip)
            .await?;
        Ok(SsoOutcome::Post(post))
    }
}

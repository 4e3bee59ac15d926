//! The service-provider registry.

use crate::domain::{
    ATTRIBUTE_SOURCES, AcsEndpoint, AttributeMapping, Binding, NameIdFormat, ServiceProvider,
};
use crate::error::{Error, Result};
use crate::protocol::oidc::uri::check_endpoint_url;
use crate::protocol::saml::metadata::{SpMetadata, parse_sp_metadata};
use crate::service::{Actor, Services, record, required_level};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// What an administrator gives to register an SP: its metadata, or fields,
/// or both (fields override the metadata).
#[derive(Debug, Clone, Default)]
pub struct SpInput {
    /// Metadata XML, or an http(s) URL to fetch it from once.
    pub metadata: Option<String>,
    pub entity_id: Option<String>,
    pub name: Option<String>,
    pub acs_urls: Vec<String>,
    pub slo_url: Option<String>,
    /// PEM or base64 DER.
    pub signing_cert: Option<String>,
    pub nameid_format: Option<NameIdFormat>,
    /// `source=name` pairs; empty means the defaults.
    pub attributes: Vec<(String, String)>,
    pub want_authn_requests_signed: Option<bool>,
    pub sign_response: bool,
    pub sign_assertion: bool,
    /// `pwd`, `mfa` or `phr`: the weakest sign-in this SP accepts.
    pub required_acr: Option<String>,
    /// A privileged SP: sign-in needs an active elevation of this role.
    pub required_role: Option<String>,
    pub soap_slo_url: Option<String>,
    /// Accept unsigned LogoutRequests (only for an SP without a signing
    /// certificate).
    pub allow_unsigned_logout: bool,
}

pub fn default_attributes() -> Vec<AttributeMapping> {
    ["email", "name", "username", "groups", "roles"]
        .iter()
        .map(|s| AttributeMapping {
            source: s.to_string(),
            name: s.to_string(),
            format: None,
        })
        .collect()
}

/// Normalises a PEM or base64 certificate to base64 DER, checking it decodes.
pub fn normalise_cert(text: &str) -> Result<String> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = STANDARD
        .decode(&body)
        .map_err(|_| Error::invalid("the certificate is neither PEM nor base64 DER"))?;
    if der.len() < 64 {
        return Err(Error::invalid("the certificate is too short to be one"));
    }
    Ok(STANDARD.encode(der))
}

impl Services {
    async fn fetch_metadata(&self, source: &str) -> Result<String> {
        if !(source.starts_with("https://") || source.starts_with("http://")) {
            return Ok(source.to_string());
        }
        let res = self
            .http
            .get(source)
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| Error::invalid(format!("cannot fetch {source}: {e}")))?;
        if !res.status().is_success() {
            return Err(Error::invalid(format!(
                "fetching {source} answered {}",
                res.status()
            )));
        }
        let bytes = res
            .bytes()
            .await
            .map_err(|e| Error::invalid(format!("cannot read {source}: {e}")))?;
        if bytes.len() > crate::protocol::saml::MAX_XML {
            return Err(Error::invalid("the metadata is too large"));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::invalid("the metadata is not UTF-8"))
    }

    pub async fn add_sp(&self, actor: &Actor, input: SpInput) -> Result<ServiceProvider> {
        let meta: Option<SpMetadata> = match &input.metadata {
            Some(src) => {
                Some(parse_sp_metadata(&self.fetch_metadata(src).await?).map_err(Error::invalid)?)
            }
            None => None,
        };
        let entity_id = input
            .entity_id
            .clone()
            .or_else(|| meta.as_ref().map(|m| m.entity_id.clone()))
            .filter(|e| !e.trim().is_empty())
            .ok_or_else(|| {
                Error::invalid("an entity ID is required (from metadata or --entity-id)")
            })?;
        let mut acs: Vec<AcsEndpoint> = meta.as_ref().map(|m| m.acs.clone()).unwrap_or_default();
        if !input.acs_urls.is_empty() {
            acs = input
                .acs_urls
                .iter()
                .enumerate()
                .map(|(i, u)| AcsEndpoint {
                    url: u.clone(),
                    binding: Binding::Post,
                    index: i as u16,
                    is_default: i == 0,
                })
                .collect();
        }
        if acs.is_empty() {
            return Err(Error::invalid(
                "at least one assertion consumer service URL is required",
            ));
        }
        for a in &acs {
            check_endpoint_url(&a.url).map_err(|e| Error::invalid(format!("ACS URL: {e}")))?;
        }
        let mut signing_certs = meta
            .as_ref()
            .map(|m| m.signing_certs.clone())
            .unwrap_or_default();
        if let Some(c) = &input.signing_cert {
            signing_certs = vec![normalise_cert(c)?];
        }
        let want_signed = input
            .want_authn_requests_signed
            .unwrap_or_else(|| meta.as_ref().is_some_and(|m| m.authn_requests_signed));
        if want_signed && signing_certs.is_empty() {
            return Err(Error::invalid(
                "signed AuthnRequests are required but no SP signing certificate is known",
            ));
        }
        if input.allow_unsigned_logout && !signing_certs.is_empty() {
            return Err(Error::invalid(
                "an SP with a signing certificate signs its logout requests; \
allowing unsigned logout is only for SPs without one",
            ));
        }
        let attributes = if input.attributes.is_empty() {
            default_attributes()
        } else {
            input
                .attributes
                .iter()
                .map(|(source, name)| {
                    if !ATTRIBUTE_SOURCES.contains(&source.as_str()) {
                        return Err(Error::invalid(format!(
                            "unknown attribute source {source}; use one of {}",
                            ATTRIBUTE_SOURCES.join(", ")
                        )));
                    }
                    Ok(AttributeMapping {
                        source: source.clone(),
                        name: name.clone(),
                        format: None,
                    })
                })
                .collect::<Result<_>>()?
        };
        let now = self.now();
        let (slo_url, slo_binding) =
            match (&input.slo_url, meta.as_ref().and_then(|m| m.slo.clone())) {
                (Some(u), _) => (Some(u.clone()), Some(Binding::Redirect)),
                (None, Some((u, b))) => (Some(u), Some(b)),
                (None, None) => (None, None),
            };
        let sp = ServiceProvider {
            name: input.name.clone().unwrap_or_else(|| entity_id.clone()),
            entity_id,
            acs,
            slo_url,
            slo_binding,
            signing_certs,
            encryption_cert: meta.as_ref().and_then(|m| m.encryption_cert.clone()),
            want_authn_requests_signed: want_signed,
            allow_unsigned_logout: input.allow_unsigned_logout,
            nameid_format: input
                .nameid_format
                .or_else(|| meta.as_ref().and_then(|m| m.nameid_format))
                .unwrap_or(NameIdFormat::Persistent),
            attributes,
            sign_response: input.sign_response,
            sign_assertion: input.sign_assertion,
            required_acr: required_level(&input.required_acr)?,
            required_role: input.required_role.clone(),
            soap_slo_url: input
                .soap_slo_url
                .clone()
                .or_else(|| meta.as_ref().and_then(|m| m.soap_slo.clone())),
            created_at: now,
            updated_at: now,
        };
        if !sp.sign_response && !sp.sign_assertion {
            return Err(Error::invalid("sign the response, the assertion, or both"));
        }
        let (x, actor) = (sp.clone(), actor.clone());
        if let Some(u) = &sp.soap_slo_url {
            check_endpoint_url(u).map_err(|e| Error::invalid(format!("SOAP SLO URL: {e}")))?;
        }
        self.db(move |r| {
            if let Some(role) = &x.required_role {
                crate::service::pim::need_privileged(r, role)?;
            }
            r.insert_sp(&x)?;
            record(
                r,
                now,
                &actor,
                "saml.sp_add",
                &x.entity_id,
                json!({"name": x.name}),
            )
        })
        .await?;
        Ok(sp)
    }

    pub async fn sp(&self, entity_id: &str) -> Result<Option<ServiceProvider>> {
        let id = entity_id.to_string();
        self.db(move |r| r.sp(&id)).await
    }

    pub async fn list_sps(&self) -> Result<Vec<ServiceProvider>> {
        self.db(|r| r.list_sps()).await
    }

    pub async fn remove_sp(&self, actor: &Actor, entity_id: &str) -> Result<()> {
        let (id, actor, now) = (entity_id.to_string(), actor.clone(), self.now());
        self.db(move |r| {
            r.delete_sp(&id)?;
            record(r, now, &actor, "saml.sp_remove", &id, json!({}))
        })
        .await
    }
}

//! SAML 2.0 records: service providers and the IdP's signing certificates.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    Post,
    Redirect,
}

impl Binding {
    pub fn urn(self) -> &'static str {
        match self {
            Self::Post => BINDING_POST,
            Self::Redirect => BINDING_REDIRECT,
        }
    }

    pub fn from_urn(s: &str) -> Option<Self> {
        match s {
            BINDING_POST => Some(Self::Post),
            BINDING_REDIRECT => Some(Self::Redirect),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameIdFormat {
    /// An opaque identifier, different for every SP, stable for the user.
    Persistent,
    Email,
    Unspecified,
}

impl NameIdFormat {
    pub fn urn(self) -> &'static str {
        match self {
            Self::Persistent => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
            Self::Email => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            Self::Unspecified => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        }
    }

    pub fn from_urn(s: &str) -> Option<Self> {
        [Self::Persistent, Self::Email, Self::Unspecified]
            .into_iter()
            .find(|f| {
                f.urn() == s
                    || s == "urn:oasis:names:tc:SAML:2.0:nameid-format:unspecified"
                        && *f == Self::Unspecified
            })
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "persistent" => Some(Self::Persistent),
            "email" | "emailAddress" => Some(Self::Email),
            "unspecified" => Some(Self::Unspecified),
            other => Self::from_urn(other),
        }
    }
}

/// An assertion consumer service endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcsEndpoint {
    pub url: String,
    pub binding: Binding,
    pub index: u16,
    pub is_default: bool,
}

/// Which user field goes out under which attribute name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeMapping {
    /// `email`, `name`, `username`, `groups`, `roles` or `id`.
    pub source: String,
    pub name: String,
    /// An attribute NameFormat URI, when the SP wants one.
    pub format: Option<String>,
}

pub const ATTRIBUTE_SOURCES: &[&str] = &["email", "name", "username", "groups", "roles", "id"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceProvider {
    pub entity_id: String,
    pub name: String,
    pub acs: Vec<AcsEndpoint>,
    pub slo_url: Option<String>,
    pub slo_binding: Option<Binding>,
    /// Base64 DER certificates the SP signs requests with.
    pub signing_certs: Vec<String>,
    pub encryption_cert: Option<String>,
    pub want_authn_requests_signed: bool,
    /// Accept unsigned LogoutRequests from this SP (which has no signing
    /// certificate): an explicit opt-in, off by default.
    pub allow_unsigned_logout: bool,
    pub nameid_format: NameIdFormat,
    pub attributes: Vec<AttributeMapping>,
    pub sign_response: bool,
    pub sign_assertion: bool,
    /// The weakest `acr` a user may sign in to this SP with.
    pub required_acr: Option<String>,
    /// A privileged SP: sign-in needs an active elevation of this role.
    pub required_role: Option<String>,
    /// Where the SP takes back-channel (SOAP) LogoutRequests.
    pub soap_slo_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ServiceProvider {
    /// The endpoint for a request: by URL, by index, or the default.
    pub fn acs_for(&self, url: Option<&str>, index: Option<u16>) -> Option<&AcsEndpoint> {
        match (url, index) {
            (Some(u), _) => self.acs.iter().find(|a| a.url == u),
            (None, Some(i)) => self.acs.iter().find(|a| a.index == i),
            (None, None) => self
                .acs
                .iter()
                .find(|a| a.is_default)
                .or_else(|| {
                    self.acs
                        .iter()
                        .filter(|a| a.binding == Binding::Post)
                        .min_by_key(|a| a.index)
                })
                .or_else(|| self.acs.first()),
        }
    }
}

/// The IdP's SAML signing key and its self-signed certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlCert {
    pub id: String,
    pub sealed_private_key: String,
    /// Base64 DER.
    pub certificate: String,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
}

/// An SP that received an assertion in a browser session: who to tell when
/// the session ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlParticipant {
    pub session_digest: String,
    pub entity_id: String,
    pub name_id: String,
    pub session_index: String,
    pub created_at: DateTime<Utc>,
}

//! OpenID Connect / OAuth 2.0 records: clients, grants, consents, keys.

use super::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// JWS algorithms portcullis signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SigningAlg {
    RS256,
    ES256,
    EdDSA,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 3] = [SigningAlg::RS256, SigningAlg::ES256, SigningAlg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client proves who it is at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    PrivateKeyJwt,
    /// A public client (browser or native app): no secret, PKCE always.
    None,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 4] = [
        AuthMethod::ClientSecretBasic,
        AuthMethod::ClientSecretPost,
        AuthMethod::PrivateKeyJwt,
        AuthMethod::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
            Self::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn uses_secret(self) -> bool {
        matches!(self, Self::ClientSecretBasic | Self::ClientSecretPost)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

impl GrantType {
    pub const ALL: [GrantType; 3] = [
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == s)
    }
}

/// A registered relying party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// SHA-256 hex of the secret; `None` for public and `private_key_jwt` clients.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may ask for.
    pub scopes: Vec<String>,
    pub require_pkce: bool,
    pub id_token_alg: SigningAlg,
    /// Signs this client's access tokens (RS256 unless set otherwise).
    pub access_token_alg: SigningAlg,
    pub access_token_ttl: i64,
    pub id_token_ttl: i64,
    pub refresh_token_ttl: i64,
    /// False for first-party apps whose users are not asked.
    pub consent_required: bool,
    pub backchannel_logout_uri: Option<String>,
    /// The client's public keys (a JWK Set) for `private_key_jwt`.
    pub jwks: Option<serde_json::Value>,
    /// SHA-256 hex of the RFC 7592 registration access token, for clients
    /// that registered themselves.
    #[serde(skip)]
    pub registration_token_hash: Option<String>,
    /// The weakest `acr` a user may sign in to this client with.
    pub required_acr: Option<String>,
    /// A privileged client: sign-in needs an active elevation of this role.
    pub required_role: Option<String>,
    /// True when the client registered itself (RFC 7591), false when an
    /// administrator registered it: the URLs a self-registered client gave
    /// are only ever called at public addresses.
    pub registered_dynamically: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    pub fn allows_grant(&self, g: GrantType) -> bool {
        self.grant_types.contains(&g)
    }
}

/// What a user (or, for client credentials, a client) was granted: the root
/// every token hangs from. Revoking it makes all of them inactive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: String,
    /// `None` for client credentials.
    pub user_id: Option<UserId>,
    /// The browser session the grant came from, for logout.
    pub session_digest: Option<String>,
    pub scope: Vec<String>,
    pub auth_time: Option<DateTime<Utc>>,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The browser's address when the grant was made (elevation conditions).
    pub client_ip: Option<String>,
    /// For a privileged client: the activation (PIM request) the grant was
    /// admitted under. The grant ends with it.
    pub activation_id: Option<String>,
}

impl Grant {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// A refresh token as stored: only its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    pub token_hash: String,
    pub grant_id: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set when the token was exchanged; a second use is reuse.
    pub used_at: Option<DateTime<Utc>>,
}

/// A signing key as stored: the private half sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: SigningAlg,
    pub sealed_private_key: String,
    pub public_jwk: serde_json::Value,
    pub created_at: DateTime<Utc>,
    /// Published before this, used for signing from this moment on.
    pub activates_at: DateTime<Utc>,
}

/// A one-time (or few-times) token that lets a client register itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationToken {
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub uses_left: i64,
}

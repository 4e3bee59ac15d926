//! Client authentication at the token, introspection and revocation
//! endpoints: exactly one method, the one the client registered.

use crate::crypto::jws;
use crate::crypto::{constant_time_eq, sha256_hex};
use crate::domain::{AuthMethod, Client, SigningAlg};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::client_auth::{ASSERTION_TYPE, check_assertion_claims, parse_basic};
use crate::protocol::oidc::discovery::paths;
use crate::service::Services;
use crate::store::Repo;

/// Whatever a request carried to authenticate a client.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub authorization: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub assertion_type: Option<String>,
    pub assertion: Option<String>,
}

/// Who a request says it is and how it proves it, before any lookup.
#[derive(Clone)]
pub(super) struct Identified {
    pub client_id: String,
    pub method: AuthMethod,
    /// The secret presented (Basic or form), for the secret methods.
    secret: Option<String>,
}

fn invalid_client(why: &str) -> Error {
    Error::oauth(
        ErrorKind::Unauthenticated,
        "invalid_client",
        why.to_string(),
    )
}

fn invalid_request(why: &str) -> Error {
    Error::oauth(ErrorKind::InvalidInput, "invalid_request", why.to_string())
}

/// Reads which client is calling and by which one method, refusing more
/// than one method or a `client_id` that contradicts the credentials.
pub(super) fn identify(creds: &ClientCredentials) -> Result<Identified> {
    let basic = match &creds.authorization {
        Some(h) if h.to_ascii_lowercase().starts_with("basic ") => Some(
            parse_basic(h).ok_or_else(|| invalid_client("the Basic credentials are malformed"))?,
        ),
        _ => None,
    };
    let methods = [
        basic.is_some(),
        creds.client_secret.is_some(),
        creds.assertion.is_some(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(invalid_request(
            "use exactly one client authentication method",
        ));
    }
    let who = if let Some((id, secret)) = basic {
        Identified {
            client_id: id,
            method: AuthMethod::ClientSecretBasic,
            secret: Some(secret),
        }
    } else if let Some(secret) = &creds.client_secret {
        Identified {
            client_id: creds
                .client_id
                .clone()
                .ok_or_else(|| invalid_client("client_id is missing"))?,
            method: AuthMethod::ClientSecretPost,
            secret: Some(secret.clone()),
        }
    } else if let Some(assertion) = &creds.assertion {
        if creds.assertion_type.as_deref() != Some(ASSERTION_TYPE) {
            return Err(invalid_client("client_assertion_type must be jwt-bearer"));
        }
        // The issuer is read unverified only to find the keys to verify with.
        let claims = jws::decode_unverified_claims(assertion)
            .map_err(|_| invalid_client("the client assertion is malformed"))?;
        Identified {
            client_id: claims["sub"]
                .as_str()
                .or(creds.client_id.as_deref())
                .unwrap_or("")
                .to_string(),
            method: AuthMethod::PrivateKeyJwt,
            secret: None,
        }
    } else {
        Identified {
            client_id: creds
                .client_id
                .clone()
                .ok_or_else(|| invalid_client("client authentication is required"))?,
            method: AuthMethod::None,
            secret: None,
        }
    };
    if creds
        .client_id
        .as_ref()
        .is_some_and(|id| *id != who.client_id)
    {
        return Err(invalid_client("client_id does not match the credentials"));
    }
    Ok(who)
}

/// The client named, if it exists and its credentials hold (assertions
/// apart), in the caller's transaction.
pub(super) fn authenticate_in(r: &mut dyn Repo, who: &Identified) -> Result<Client> {
    let client = r
        .client(&who.client_id)?
        .ok_or_else(|| invalid_client("unknown client"))?;
    check_secret(&client, who)?;
    Ok(client)
}

/// The method must be the client's registered one; a secret must match its
/// stored digest (compared in constant time). Assertions are checked apart.
fn check_secret(client: &Client, who: &Identified) -> Result<()> {
    if client.auth_method != who.method {
        return Err(invalid_client(&format!(
            "this client must authenticate with {}",
            client.auth_method.as_str()
        )));
    }
    if who.method.uses_secret() {
        let secret = who.secret.as_deref().unwrap_or_default();
        let expected = client.secret_hash.as_deref().unwrap_or_default();
        if !constant_time_eq(
            sha256_hex(secret.as_bytes()).as_bytes(),
            expected.as_bytes(),
        ) {
            return Err(invalid_client("the client secret is wrong"));
        }
    }
    Ok(())
}

/// The calling client as a transaction meets it: authenticated already (a
/// client assertion, whose replay check is asynchronous), or identified and
/// to be authenticated inside the transaction, saving a round trip.
pub(super) enum Caller {
    Authenticated(Box<Client>),
    Identified(Identified),
}

impl Caller {
    /// The client, authenticated, in the caller's transaction.
    pub(super) fn client_in(&self, r: &mut dyn Repo) -> Result<Client> {
        match self {
            Caller::Authenticated(client) => Ok(Client::clone(client)),
            Caller::Identified(who) => authenticate_in(r, who),
        }
    }
}

impl Services {
    /// Who is calling: a client assertion is checked now; a secret (or a
    /// public client's bare ID) is checked by the transaction that serves
    /// the request.
    pub(super) async fn caller(&self, creds: &ClientCredentials) -> Result<Caller> {
        let who = identify(creds)?;
        if who.method != AuthMethod::PrivateKeyJwt {
            return Ok(Caller::Identified(who));
        }
        let client = self.db(move |r| authenticate_in(r, &who)).await?;
        self.check_client_assertion(&client, creds.assertion.as_deref().unwrap_or(""))
            .await?;
        Ok(Caller::Authenticated(Box::new(client)))
    }

    async fn check_client_assertion(&self, client: &Client, assertion: &str) -> Result<()> {
        let keys: Vec<serde_json::Value> = client
            .jwks
            .as_ref()
            .and_then(|j| j["keys"].as_array().cloned())
            .unwrap_or_default();
        // Only asymmetric algorithms: `none` and HMAC (where a public key could
        // be abused as the secret) are refused by jws::verify.
        let claims = jws::verify(assertion, &keys, &SigningAlg::ALL)
            .map_err(|e| invalid_client(&format!("the client assertion is not valid: {e}")))?;
        let issuer = &self.issuer;
        let audiences = vec![
            format!("{issuer}{}", paths::TOKEN),
            issuer.to_string(),
            format!("{issuer}{}", paths::INTROSPECT),
            format!("{issuer}{}", paths::REVOKE),
        ];
        let (jti, exp) = check_assertion_claims(&claims, &client.client_id, &audiences, self.now())
            .map_err(|e| invalid_client(&e))?;
        let ttl = std::time::Duration::from_secs((exp - self.now().timestamp()).max(1) as u64 + 60);
        let key = format!(
            "assertion-jti:{}:{}",
            client.client_id,
            sha256_hex(jti.as_bytes())
        );
        if !self.ephemeral.put_if_absent(&key, b"1", ttl).await? {
            return Err(invalid_client("the client assertion was already used"));
        }
        Ok(())
    }
}

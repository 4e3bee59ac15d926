//! The token endpoint and its three grants.

use super::authorize::{CodeGrant, code_key, code_used_key};
use super::client_auth::Caller;
pub use super::client_auth::ClientCredentials;
use super::tokens::{Subject, TokenResponse, access_token_expiry, refresh_token_for};
use crate::crypto::sha256_hex;
use crate::domain::{Client, Grant, GrantType};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::lifecycle::admitting_activation;
use crate::protocol::oidc::{pkce, scope};
use crate::service::pim::{
    Elevation, Recipient, issuance_rows, record_issuances_in, subject_for_issue_in,
};
use crate::service::{Actor, Services, record};
use crate::store::Repo;
use chrono::Duration;
use serde_json::json;

/// The token endpoint's form parameters.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
}

fn invalid_grant(why: &str) -> Error {
    Error::oauth(ErrorKind::InvalidInput, "invalid_grant", why.to_string())
}

fn invalid_request(why: &str) -> Error {
    Error::oauth(ErrorKind::InvalidInput, "invalid_request", why.to_string())
}

/// For a privileged client, the active elevation that admits this issuance
/// (when `bound`, only that activation); `invalid_grant` when there is none.
/// `None` for other clients.
fn admitted_under(
    client: &Client,
    subject: &super::tokens::Subject,
    bound: Option<&str>,
) -> Result<Option<Elevation>> {
    let Some(role) = &client.required_role else {
        return Ok(None);
    };
    let active = subject
        .elevations
        .iter()
        .map(|e| (e.role.as_str(), e.request_id.as_str()));
    let id = admitting_activation(role, bound, active).ok_or_else(|| {
        invalid_grant(&format!(
            "{} needs an active elevation of {role}",
            client.name
        ))
    })?;
    Ok(subject
        .elevations
        .iter()
        .find(|e| e.request_id == id)
        .cloned())
}

impl Services {
    async fn revoke_grant_for(
        &self,
        grant_id: &str,
        action: &'static str,
        client_id: &str,
    ) -> Result<()> {
        let (gid, cid, now) = (grant_id.to_string(), client_id.to_string(), self.now());
        self.db(move |r| revoke_grant_in(r, &gid, &cid, action, now))
            .await
    }

    async fn redeem_code(&self, client: &Client, req: TokenRequest) -> Result<TokenResponse> {
        let code = req
            .code
            .as_deref()
            .ok_or_else(|| invalid_request("code is missing"))?;
        let Some(bytes) = self.ephemeral.take(&code_key(code)).await? else {
            if let Some(gid) = self.ephemeral.get(&code_used_key(code)).await? {
                let gid = String::from_utf8_lossy(&gid).to_string();
                self.revoke_grant_for(&gid, "oidc.code_replay", &client.client_id)
                    .await?;
                return Err(invalid_grant(
                    "the code was already used; everything issued from it is revoked",
                ));
            }
            return Err(invalid_grant("the code is unknown or has expired"));
        };
        let cg: CodeGrant =
            serde_json::from_slice(&bytes).map_err(|e| Error::internal(e.to_string()))?;
        let now = self.now();
        if cg.expires_at <= now.timestamp() {
            return Err(invalid_grant("the code has expired"));
        }
        if cg.client_id != client.client_id {
            return Err(invalid_grant("the code was issued to another client"));
        }
        if req.redirect_uri.as_deref() != Some(cg.redirect_uri.as_str()) {
            return Err(invalid_grant(
                "redirect_uri does not match the authorization request",
            ));
        }
        match (&cg.code_challenge, req.code_verifier.as_deref()) {
            (Some(ch), Some(v)) if pkce::verify(ch, v) => {}
            (Some(_), Some(_)) => {
                return Err(invalid_grant("the PKCE code_verifier does not match"));
            }
            (Some(_), None) => return Err(invalid_grant("code_verifier is missing")),
            (None, Some(_)) => {
                return Err(invalid_grant(
                    "code_verifier sent but the request had no code_challenge",
                ));
            }
            (None, None) => {}
        }
        let (c, max, code_grant) = (
            client.clone(),
            self.max_token_lifetime().num_seconds(),
            cg.clone(),
        );
        let (grant, subject, refresh) = self
            .db(move |r| code_grant_in(r, &c, &code_grant, max, now))
            .await?;
        // Remember the redemption so a replay can revoke what it produced.
        let marker_ttl = std::time::Duration::from_secs(600);
        self.ephemeral
            .put_ttl(&code_used_key(code), grant.id.as_bytes(), marker_ttl)
            .await?;
        self.mint_tokens(
            client,
            &grant,
            &grant.scope,
            Some(&subject),
            cg.nonce.as_deref(),
            refresh,
        )
    }

    /// Rotates a refresh token. Every check, the user's claims, the
    /// rotation and any revocation it causes happen in one transaction: one
    /// round trip, and a reuse race has exactly one winner.
    async fn refresh(&self, caller: Caller, req: TokenRequest) -> Result<TokenResponse> {
        let (now, max) = (self.now(), self.max_token_lifetime().num_seconds());
        let (client, refreshed) = self
            .db(move |r| {
                let client = client_for(r, &caller, GrantType::RefreshToken)?;
                let hash = refresh_token_hash(&req)?;
                let refreshed = refresh_in(r, &client, &hash, req.scope.as_deref(), max, now)?;
                Ok((client, refreshed))
            })
            .await?;
        let (grant, subject, scope, next) = refreshed?;
        self.mint_tokens(&client, &grant, &scope, Some(&subject), None, Some(next))
    }

    async fn client_credentials(&self, caller: Caller, req: TokenRequest) -> Result<TokenResponse> {
        let now = self.now();
        let (client, grant) = self
            .db(move |r| {
                let client = client_for(r, &caller, GrantType::ClientCredentials)?;
                let grant = client_credentials_grant(&client, req.scope.as_deref(), now)?;
                r.insert_grant(&grant)?;
                Ok((client, grant))
            })
            .await?;
        self.mint_tokens(&client, &grant, &grant.scope, None, None, None)
    }

    /// The token endpoint: authenticates the client, then answers its grant.
    /// For `client_credentials` and `refresh_token` a client secret is
    /// checked inside the grant's own transaction: one round trip per token.
    /// A code's client is authenticated before the code is spent.
    pub async fn token_endpoint(
        &self,
        creds: &ClientCredentials,
        req: TokenRequest,
    ) -> Result<TokenResponse> {
        let caller = self.caller(creds).await?;
        match req.grant_type.as_deref().and_then(GrantType::parse) {
            Some(GrantType::ClientCredentials) => self.client_credentials(caller, req).await,
            Some(GrantType::RefreshToken) => self.refresh(caller, req).await,
            Some(GrantType::AuthorizationCode) => {
                let g = GrantType::AuthorizationCode;
                let client = self.db(move |r| client_for(r, &caller, g)).await?;
                self.redeem_code(&client, req).await
            }
            None => {
                // The client's authentication decides first, as for the others.
                self.db(move |r| caller.client_in(r)).await?;
                Err(unknown_grant_type(req.grant_type.as_deref()))
            }
        }
    }
}

/// A missing or unsupported `grant_type`.
fn unknown_grant_type(grant_type: Option<&str>) -> Error {
    match grant_type {
        None => invalid_request("grant_type is missing"),
        Some(g) => Error::oauth(
            ErrorKind::InvalidInput,
            "unsupported_grant_type",
            format!("grant_type {g} is not supported"),
        ),
    }
}

/// The client, authenticated and allowed grant `g`.
fn client_for(r: &mut dyn Repo, caller: &Caller, g: GrantType) -> Result<Client> {
    let client = caller.client_in(r)?;
    check_grant_allowed(&client, g)?;
    Ok(client)
}

fn refresh_token_hash(req: &TokenRequest) -> Result<String> {
    let token = req
        .refresh_token
        .as_deref()
        .ok_or_else(|| invalid_request("refresh_token is missing"))?;
    Ok(sha256_hex(token.as_bytes()))
}

/// What a refresh produced: the grant, its user, the scope and the next
/// refresh token; or the refusal, after any revocation it called for.
type Refreshed = std::result::Result<(Grant, Subject, Vec<String>, String), Error>;

/// Ends a grant for good, with the reason on the audit trail.
fn revoke_grant_in(
    r: &mut dyn Repo,
    grant_id: &str,
    client_id: &str,
    action: &'static str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    r.revoke_grant(grant_id, now)?;
    record(
        r,
        now,
        &Actor::system(),
        action,
        client_id,
        json!({"grant": grant_id}),
    )
}

/// The refresh grant's rules, in the caller's transaction. A refusal that
/// revokes the grant returns `Ok(Err(..))` so that the revocation commits.
fn refresh_in(
    r: &mut dyn Repo,
    client: &Client,
    hash: &str,
    asked: Option<&str>,
    max_lifetime: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Refreshed> {
    let found = match r.refresh_token(hash)? {
        Some(t) => r.grant(&t.grant_id)?.map(|g| (t, g)),
        None => None,
    };
    let Some((stored, grant)) = found else {
        return Ok(Err(invalid_grant("the refresh token is unknown")));
    };
    if grant.client_id != client.client_id {
        return Ok(Err(invalid_grant(
            "the refresh token was issued to another client",
        )));
    }
    let reuse = "the refresh token was already used; the whole grant is revoked";
    if stored.used_at.is_some() {
        revoke_grant_in(r, &grant.id, &grant.client_id, "oidc.refresh_reuse", now)?;
        return Ok(Err(invalid_grant(reuse)));
    }
    if !grant.is_live(now) || stored.expires_at <= now {
        return Ok(Err(invalid_grant(
            "the refresh token has expired or was revoked",
        )));
    }
    let scope = match asked {
        None => grant.scope.clone(),
        Some(s) => {
            let asked = scope::parse(s);
            if !asked.iter().all(|x| grant.scope.contains(x)) {
                return Ok(Err(Error::oauth(
                    ErrorKind::InvalidInput,
                    "invalid_scope",
                    "a refresh cannot widen the scope",
                )));
            }
            asked
        }
    };
    let Some(user_id) = grant.user_id.clone() else {
        return Ok(Err(invalid_grant("not a user grant")));
    };
    let subject =
        match subject_for_issue_in(r, &user_id.to_string(), grant.client_ip.as_deref(), now)? {
            Some(s) if s.user.is_active() => s,
            _ => {
                revoke_grant_in(
                    r,
                    &grant.id,
                    &grant.client_id,
                    "oidc.refresh_inactive_user",
                    now,
                )?;
                return Ok(Err(invalid_grant("the user is no longer active")));
            }
        };
    // A privileged client's refresh passes its gate again: without the
    // window the grant was admitted under, the grant ends for good.
    if admitted_under(client, &subject, grant.activation_id.as_deref()).is_err() {
        revoke_grant_in(
            r,
            &grant.id,
            &grant.client_id,
            "oidc.refresh_elevation_ended",
            now,
        )?;
        return Ok(Err(invalid_grant(
            "the elevation this grant was admitted under has ended",
        )));
    }
    // Another request redeemed it a moment ago: that is reuse too.
    if !r.use_refresh_token(hash, now)? {
        revoke_grant_in(r, &grant.id, &grant.client_id, "oidc.refresh_reuse", now)?;
        return Ok(Err(invalid_grant(reuse)));
    }
    let (next, next_stored) = refresh_token_for(&grant, now);
    r.insert_refresh_token(&next_stored)?;
    note_elevated_in(r, client, &grant, &subject, max_lifetime, now)?;
    Ok(Ok((grant, subject, scope, next)))
}

/// An authorization code's grant, in one transaction: the user still active
/// with their claims and elevations now, the session the code came from
/// still alive, a privileged client's gate, then the grant, its refresh
/// token and what went where. Nothing is written unless every check holds.
fn code_grant_in(
    r: &mut dyn Repo,
    client: &Client,
    cg: &CodeGrant,
    max_lifetime: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(Grant, Subject, Option<String>)> {
    let subject = subject_for_issue_in(r, &cg.user_id, cg.ip.as_deref(), now)?
        .filter(|s| s.user.is_active())
        .ok_or_else(|| invalid_grant("the user is no longer active"))?;
    // A code outlives nothing it came from: once its session ended (sign-out,
    // disable, a password reset), it buys no tokens.
    if r.session(&cg.session_digest)?.is_none() {
        return Err(invalid_grant("the session the code came from has ended"));
    }
    let offline = cg.scope.iter().any(|s| s == "offline_access")
        && client.allows_grant(GrantType::RefreshToken);
    let lifetime = if offline {
        client.refresh_token_ttl
    } else {
        client.access_token_ttl
    };
    // A privileged client's grant lives inside the window that admitted it.
    let admitted = admitted_under(client, &subject, None)?;
    let mut expires_at = now + Duration::seconds(lifetime);
    if let Some(e) = &admitted {
        expires_at = expires_at.min(e.ends_at);
    }
    let grant = Grant {
        id: uuid::Uuid::new_v4().simple().to_string(),
        client_id: client.client_id.clone(),
        user_id: Some(subject.user.id.clone()),
        session_digest: Some(cg.session_digest.clone()),
        scope: cg.scope.clone(),
        auth_time: chrono::DateTime::from_timestamp(cg.auth_time, 0),
        acr: Some(cg.acr.clone()),
        amr: cg.amr.clone(),
        created_at: now,
        expires_at,
        revoked_at: None,
        client_ip: cg.ip.clone(),
        activation_id: admitted.map(|e| e.request_id),
    };
    r.insert_grant(&grant)?;
    let refresh = offline.then(|| refresh_token_for(&grant, now));
    if let Some((_, stored)) = &refresh {
        r.insert_refresh_token(stored)?;
    }
    let actor = Actor::user(subject.user.username.as_str(), None);
    record(
        r,
        now,
        &actor,
        "oidc.token",
        &grant.client_id,
        json!({"grant": grant.id, "grant_type": "authorization_code", "scope": grant.scope}),
    )?;
    note_elevated_in(r, client, &grant, &subject, max_lifetime, now)?;
    Ok((grant, subject, refresh.map(|(token, _)| token)))
}

/// Records which elevations go to the client with the access token about
/// to be minted for `grant`, until that token ends.
fn note_elevated_in(
    r: &mut dyn Repo,
    client: &Client,
    grant: &Grant,
    subject: &Subject,
    max_lifetime: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let to = Recipient {
        protocol: "oidc",
        id: &grant.client_id,
        session_digest: grant.session_digest.as_deref(),
        grant_id: Some(&grant.id),
        name_id: None,
        session_index: None,
    };
    let exp = access_token_expiry(client, max_lifetime, Some(subject), now);
    record_issuances_in(r, &issuance_rows(&subject.elevations, &to, now, exp))
}

/// `unauthorized_client` unless the client registered this grant type.
fn check_grant_allowed(client: &Client, g: GrantType) -> Result<()> {
    if client.allows_grant(g) {
        return Ok(());
    }
    Err(Error::oauth(
        ErrorKind::InvalidInput,
        "unauthorized_client",
        format!("this client may not use {}", g.as_str()),
    ))
}

/// The grant a `client_credentials` request asks for: the client's own
/// scopes (never `openid` or `offline_access`), or the subset requested.
fn client_credentials_grant(
    client: &Client,
    requested: Option<&str>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Grant> {
    if client.is_public() {
        return Err(Error::oauth(
            ErrorKind::InvalidInput,
            "unauthorized_client",
            "public clients cannot use client_credentials",
        ));
    }
    let usable: Vec<String> = client
        .scopes
        .iter()
        .filter(|s| !matches!(s.as_str(), "openid" | "offline_access"))
        .cloned()
        .collect();
    let scope = match requested {
        None => usable,
        Some(s) => {
            let asked = scope::parse(s);
            if let Some(bad) = asked.iter().find(|x| !usable.contains(x)) {
                return Err(Error::oauth(
                    ErrorKind::InvalidInput,
                    "invalid_scope",
                    format!("scope {bad} is not available to this client"),
                ));
            }
            asked
        }
    };
    Ok(Grant {
        id: uuid::Uuid::new_v4().simple().to_string(),
        client_id: client.client_id.clone(),
        user_id: None,
        session_digest: None,
        scope,
        auth_time: None,
        acr: None,
        amr: vec![],
        created_at: now,
        expires_at: now + Duration::seconds(client.access_token_ttl),
        revoked_at: None,
        client_ip: None,
        activation_id: None,
    })
}

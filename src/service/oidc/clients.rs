//! Client registry: the CLI, dynamic registration (RFC 7591/7592), and the
//! lookups the endpoints make.

use crate::crypto::{constant_time_eq, random_token, sha256_hex};
use crate::domain::{AuthMethod, Client, RegistrationToken, SigningAlg};
use crate::error::{Error, ErrorKind, Result};
use crate::protocol::oidc::registration::{ClientDraft, MetadataError, check_draft, same_name};
use crate::service::{Actor, Services, record, required_level};
use crate::store::Repo;
use chrono::Duration;
use serde_json::json;

/// Per-client settings the CLI can set beyond the RFC 7591 metadata.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub require_pkce: bool,
    pub consent_required: bool,
    pub access_token_ttl: Option<i64>,
    pub id_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    /// `pwd`, `mfa` or `phr`: the weakest sign-in this client accepts.
    pub required_acr: Option<String>,
    /// A privileged client: sign-in needs an active elevation of this role.
    pub required_role: Option<String>,
    /// Signs the client's access tokens. RFC 7591 has no member for it, so
    /// self-registered clients keep the default, RS256.
    pub access_token_alg: SigningAlg,
}

/// What `client update` changes; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub access_token_alg: Option<SigningAlg>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            require_pkce: true,
            consent_required: true,
            access_token_ttl: None,
            id_token_ttl: None,
            refresh_token_ttl: None,
            required_acr: None,
            required_role: None,
            access_token_alg: SigningAlg::RS256,
        }
    }
}

/// A client just created: the secret is shown this once.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client: Client,
    pub secret: Option<String>,
    /// For self-registered clients: the RFC 7592 registration access token.
    pub registration_token: Option<String>,
}

fn metadata_error((code, msg): MetadataError) -> Error {
    Error::oauth(ErrorKind::InvalidInput, code, msg)
}

/// A self-registered client may not take the name of another client (one
/// the administrators added, say): the consent page shows the name.
fn refuse_taken_name(r: &mut dyn Repo, name: &str, except: Option<&str>) -> Result<()> {
    let taken = r
        .list_clients()?
        .iter()
        .any(|c| Some(c.client_id.as_str()) != except && same_name(&c.name, name));
    if taken {
        return Err(Error::oauth(
            ErrorKind::InvalidInput,
            "invalid_client_metadata",
            "client_name is already the name of another client; choose another",
        ));
    }
    Ok(())
}

impl Services {
    fn lifetime_secs(
        &self,
        asked: Option<i64>,
        default: std::time::Duration,
        cap: bool,
    ) -> Result<i64> {
        let max = self.settings.oidc.max_token_lifetime.as_secs() as i64;
        let v = asked.unwrap_or(default.as_secs() as i64);
        if v <= 0 {
            return Err(Error::invalid("token lifetimes must be positive"));
        }
        if cap && v > max {
            return Err(Error::invalid(format!(
                "token lifetimes may not exceed oidc.max_token_lifetime ({max} s)"
            )));
        }
        Ok(v)
    }

    fn build_client(
        &self,
        draft: ClientDraft,
        opts: &ClientOptions,
    ) -> Result<(Client, Option<String>)> {
        check_draft(&draft).map_err(metadata_error)?;
        if draft.auth_method == AuthMethod::None && !opts.require_pkce {
            return Err(Error::invalid("public clients always need PKCE"));
        }
        let o = &self.settings.oidc;
        let secret = draft.auth_method.uses_secret().then(random_token);
        let now = self.now();
        let client = Client {
            client_id: uuid::Uuid::new_v4().simple().to_string(),
            name: draft.name.trim().to_string(),
            secret_hash: secret.as_ref().map(|s| sha256_hex(s.as_bytes())),
            auth_method: draft.auth_method,
            redirect_uris: draft.redirect_uris,
            post_logout_redirect_uris: draft.post_logout_redirect_uris,
            grant_types: draft.grant_types,
            scopes: draft.scopes,
            require_pkce: opts.require_pkce,
            id_token_alg: draft.id_token_alg,
            access_token_alg: opts.access_token_alg,
            access_token_ttl: self.lifetime_secs(
                opts.access_token_ttl,
                o.access_token_lifetime,
                true,
            )?,
            id_token_ttl: self.lifetime_secs(opts.id_token_ttl, o.id_token_lifetime, true)?,
            refresh_token_ttl: self.lifetime_secs(
                opts.refresh_token_ttl,
                o.refresh_token_lifetime,
                false,
            )?,
            consent_required: opts.consent_required,
            backchannel_logout_uri: draft.backchannel_logout_uri,
            jwks: draft.jwks,
            registration_token_hash: None,
            required_acr: required_level(&opts.required_acr)?,
            required_role: opts.required_role.clone(),
            registered_dynamically: false,
            created_at: now,
            updated_at: now,
        };
        Ok((client, secret))
    }

    /// Registers a client from the CLI (or an admin page).
    pub async fn create_client(
        &self,
        actor: &Actor,
        draft: ClientDraft,
        opts: ClientOptions,
    ) -> Result<NewClient> {
        let (client, secret) = self.build_client(draft, &opts)?;
        let (c, actor) = (client.clone(), actor.clone());
        self.db(move |r| {
            if let Some(role) = &c.required_role {
                crate::service::pim::need_privileged(r, role)?;
            }
            r.insert_client(&c)?;
            record(
                r,
                c.created_at,
                &actor,
                "client.create",
                &c.client_id,
                json!({"name": c.name}),
            )
        })
        .await?;
        Ok(NewClient {
            client,
            secret,
            registration_token: None,
        })
    }

    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        let id = client_id.to_string();
        self.db(move |r| r.client(&id)).await
    }

    pub async fn need_client(&self, client_id: &str) -> Result<Client> {
        self.client(client_id)
            .await?
            .ok_or_else(|| Error::not_found(format!("no client {client_id}")))
    }

    pub async fn list_clients(&self) -> Result<Vec<Client>> {
        self.db(|r| r.list_clients()).await
    }

    /// Issues a new secret; the old one stops working at once.
    pub async fn rotate_client_secret(&self, actor: &Actor, client_id: &str) -> Result<String> {
        let mut client = self.need_client(client_id).await?;
        if !client.auth_method.uses_secret() {
            return Err(Error::invalid(format!(
                "client {client_id} authenticates with {}, not a secret",
                client.auth_method.as_str()
            )));
        }
        let secret = random_token();
        client.secret_hash = Some(sha256_hex(secret.as_bytes()));
        client.updated_at = self.now();
        let actor = actor.clone();
        self.db(move |r| {
            r.update_client(&client)?;
            record(
                r,
                client.updated_at,
                &actor,
                "client.rotate_secret",
                &client.client_id,
                json!({}),
            )
        })
        .await?;
        Ok(secret)
    }

    /// Changes an administrator's settings of a client. Tokens issued before
    /// stay valid: they are verified against every published key.
    pub async fn update_client(
        &self,
        actor: &Actor,
        client_id: &str,
        changes: ClientChanges,
    ) -> Result<Client> {
        let mut client = self.need_client(client_id).await?;
        let mut changed = serde_json::Map::new();
        if let Some(alg) = changes.access_token_alg {
            client.access_token_alg = alg;
            changed.insert("access_token_alg".into(), json!(alg.as_str()));
        }
        if changed.is_empty() {
            return Err(Error::invalid(
                "nothing to change; see client update --help",
            ));
        }
        client.updated_at = self.now();
        let (c, actor) = (client.clone(), actor.clone());
        self.db(move |r| {
            r.update_client(&c)?;
            record(
                r,
                c.updated_at,
                &actor,
                "client.update",
                &c.client_id,
                serde_json::Value::Object(changed.clone()),
            )
        })
        .await?;
        Ok(client)
    }

    pub async fn remove_client(&self, actor: &Actor, client_id: &str) -> Result<()> {
        let (id, actor, now) = (client_id.to_string(), actor.clone(), self.now());
        self.db(move |r| {
            r.delete_client(&id)?;
            record(r, now, &actor, "client.remove", &id, json!({}))
        })
        .await
    }

    /// Creates an initial access token for dynamic registration.
    pub async fn create_registration_token(
        &self,
        actor: &Actor,
        ttl: Duration,
        uses: i64,
    ) -> Result<String> {
        if uses < 1 {
            return Err(Error::invalid(
                "a registration token needs at least one use",
            ));
        }
        let token = random_token();
        let now = self.now();
        let t = RegistrationToken {
            token_hash: sha256_hex(token.as_bytes()),
            created_at: now,
            expires_at: now + ttl,
            uses_left: uses,
        };
        let actor = actor.clone();
        self.db(move |r| {
            r.insert_registration_token(&t)?;
            record(
                r,
                now,
                &actor,
                "client.registration_token",
                "",
                json!({"expires_at": t.expires_at, "uses": uses}),
            )
        })
        .await?;
        Ok(token)
    }

    /// RFC 7591: registers a client presenting an initial access token.
    pub async fn register_client(
        &self,
        initial_token: &str,
        draft: ClientDraft,
    ) -> Result<NewClient> {
        let (mut client, secret) = self.build_client(draft, &ClientOptions::default())?;
        let reg_token = random_token();
        client.registration_token_hash = Some(sha256_hex(reg_token.as_bytes()));
        client.registered_dynamically = true;
        let (c, hash, now) = (
            client.clone(),
            sha256_hex(initial_token.as_bytes()),
            self.now(),
        );
        self.db(move |r| {
            if !r.spend_registration_token(&hash, now)? {
                return Err(Error::oauth(
                    ErrorKind::Unauthenticated,
                    "invalid_token",
                    "the initial access token is unknown, expired or used up",
                ));
            }
            refuse_taken_name(r, &c.name, None)?;
            r.insert_client(&c)?;
            record(
                r,
                now,
                &Actor::system(),
                "client.register",
                &c.client_id,
                json!({"name": c.name}),
            )
        })
        .await?;
        Ok(NewClient {
            client,
            secret,
            registration_token: Some(reg_token),
        })
    }

    /// RFC 7592: the client named by a registration access token.
    pub async fn registered_client(&self, client_id: &str, reg_token: &str) -> Result<Client> {
        let denied = || {
            Error::oauth(
                ErrorKind::Unauthenticated,
                "invalid_token",
                "the registration access token is not valid for this client",
            )
        };
        let client = self.client(client_id).await?.ok_or_else(denied)?;
        let expected = client.registration_token_hash.clone().ok_or_else(denied)?;
        if !constant_time_eq(
            sha256_hex(reg_token.as_bytes()).as_bytes(),
            expected.as_bytes(),
        ) {
            return Err(denied());
        }
        Ok(client)
    }

    /// RFC 7592 update: the metadata replaces what was registered.
    pub async fn update_registered_client(
        &self,
        client_id: &str,
        reg_token: &str,
        draft: ClientDraft,
    ) -> Result<Client> {
        let old = self.registered_client(client_id, reg_token).await?;
        check_draft(&draft).map_err(metadata_error)?;
        if draft.auth_method != old.auth_method {
            return Err(Error::oauth(
                ErrorKind::InvalidInput,
                "invalid_client_metadata",
                "token_endpoint_auth_method cannot change; register a new client",
            ));
        }
        let client = Client {
            name: draft.name.trim().to_string(),
            redirect_uris: draft.redirect_uris,
            post_logout_redirect_uris: draft.post_logout_redirect_uris,
            grant_types: draft.grant_types,
            scopes: draft.scopes,
            id_token_alg: draft.id_token_alg,
            jwks: draft.jwks,
            backchannel_logout_uri: draft.backchannel_logout_uri,
            updated_at: self.now(),
            ..old
        };
        let c = client.clone();
        self.db(move |r| {
            refuse_taken_name(r, &c.name, Some(&c.client_id))?;
            r.update_client(&c)?;
            record(
                r,
                c.updated_at,
                &Actor::system(),
                "client.update",
                &c.client_id,
                json!({}),
            )
        })
        .await?;
        Ok(client)
    }

    pub async fn delete_registered_client(&self, client_id: &str, reg_token: &str) -> Result<()> {
        self.registered_client(client_id, reg_token).await?;
        self.remove_client(&Actor::system(), client_id).await
    }
}

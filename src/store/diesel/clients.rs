//! Clients, consents and registration tokens.

use super::schema::{clients as c, consents, registration_tokens as rt};
use super::{DbConn, conflict_as, from_ts, to_ts};
use crate::domain::{AuthMethod, Client, GrantType, RegistrationToken, SigningAlg, UserId};
use crate::error::{Error, Result};
use crate::store::{ClientRepo, ConsentRepo, RegistrationRepo};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

#[derive(Queryable, Insertable, AsChangeset)]
#[diesel(table_name = c)]
struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: Option<String>,
    auth_method: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    require_pkce: bool,
    id_token_alg: String,
    access_token_ttl: i64,
    id_token_ttl: i64,
    refresh_token_ttl: i64,
    consent_required: bool,
    backchannel_logout_uri: Option<String>,
    jwks: Option<String>,
    registration_token_hash: Option<String>,
    created_at: i64,
    updated_at: i64,
    required_acr: Option<String>,
    required_role: Option<String>,
    registered_dynamically: bool,
    access_token_alg: String,
}

pub(super) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::internal(format!("stored {what}: {e}")))
}

impl ClientRow {
    fn from_domain(x: &Client) -> Self {
        Self {
            client_id: x.client_id.clone(),
            name: x.name.clone(),
            secret_hash: x.secret_hash.clone(),
            auth_method: x.auth_method.as_str().into(),
            redirect_uris: to_json(&x.redirect_uris),
            post_logout_redirect_uris: to_json(&x.post_logout_redirect_uris),
            grant_types: to_json(&x.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()),
            scopes: to_json(&x.scopes),
            require_pkce: x.require_pkce,
            id_token_alg: x.id_token_alg.as_str().into(),
            access_token_ttl: x.access_token_ttl,
            id_token_ttl: x.id_token_ttl,
            refresh_token_ttl: x.refresh_token_ttl,
            consent_required: x.consent_required,
            backchannel_logout_uri: x.backchannel_logout_uri.clone(),
            jwks: x.jwks.as_ref().map(|j| j.to_string()),
            registration_token_hash: x.registration_token_hash.clone(),
            created_at: to_ts(x.created_at),
            updated_at: to_ts(x.updated_at),
            required_acr: x.required_acr.clone(),
            required_role: x.required_role.clone(),
            registered_dynamically: x.registered_dynamically,
            access_token_alg: x.access_token_alg.as_str().into(),
        }
    }

    fn into_domain(self) -> Result<Client> {
        let grant_names: Vec<String> = from_json("grant types", &self.grant_types)?;
        Ok(Client {
            auth_method: AuthMethod::parse(&self.auth_method).ok_or_else(|| {
                Error::internal(format!("stored auth method {}", self.auth_method))
            })?,
            redirect_uris: from_json("redirect URIs", &self.redirect_uris)?,
            post_logout_redirect_uris: from_json(
                "post-logout URIs",
                &self.post_logout_redirect_uris,
            )?,
            grant_types: grant_names
                .iter()
                .filter_map(|g| GrantType::parse(g))
                .collect(),
            scopes: from_json("scopes", &self.scopes)?,
            id_token_alg: SigningAlg::parse(&self.id_token_alg)
                .ok_or_else(|| Error::internal(format!("stored alg {}", self.id_token_alg)))?,
            access_token_alg: SigningAlg::parse(&self.access_token_alg)
                .ok_or_else(|| Error::internal(format!("stored alg {}", self.access_token_alg)))?,
            jwks: self
                .jwks
                .as_deref()
                .map(|j| from_json("jwks", j))
                .transpose()?,
            client_id: self.client_id,
            name: self.name,
            secret_hash: self.secret_hash,
            require_pkce: self.require_pkce,
            access_token_ttl: self.access_token_ttl,
            id_token_ttl: self.id_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            consent_required: self.consent_required,
            backchannel_logout_uri: self.backchannel_logout_uri,
            registration_token_hash: self.registration_token_hash,
            required_acr: self.required_acr,
            required_role: self.required_role,
            registered_dynamically: self.registered_dynamically,
            created_at: from_ts(self.created_at),
            updated_at: from_ts(self.updated_at),
        })
    }
}

impl ClientRepo for DbConn {
    fn insert_client(&mut self, client: &Client) -> Result<()> {
        diesel::insert_into(c::table)
            .values(ClientRow::from_domain(client))
            .execute(self)
            .map_err(conflict_as(&format!("client {}", client.client_id)))?;
        Ok(())
    }

    fn client(&mut self, client_id: &str) -> Result<Option<Client>> {
        c::table
            .find(client_id)
            .first::<ClientRow>(self)
            .optional()?
            .map(ClientRow::into_domain)
            .transpose()
    }

    fn list_clients(&mut self) -> Result<Vec<Client>> {
        c::table
            .order(c::name.asc())
            .load::<ClientRow>(self)?
            .into_iter()
            .map(ClientRow::into_domain)
            .collect()
    }

    fn update_client(&mut self, client: &Client) -> Result<()> {
        let mut row = ClientRow::from_domain(client);
        // Never rewritten by an update.
        let existing = c::table
            .find(&client.client_id)
            .select(c::created_at)
            .first::<i64>(self)
            .optional()?
            .ok_or_else(|| Error::not_found(format!("no client {}", client.client_id)))?;
        row.created_at = existing;
        diesel::update(c::table.find(&client.client_id))
            .set(&row)
            .execute(self)?;
        Ok(())
    }

    fn delete_client(&mut self, client_id: &str) -> Result<()> {
        let n = diesel::delete(c::table.find(client_id)).execute(self)?;
        if n == 0 {
            return Err(Error::not_found(format!("no client {client_id}")));
        }
        Ok(())
    }
}

impl ConsentRepo for DbConn {
    fn consent(&mut self, user: &UserId, client_id: &str) -> Result<Option<Vec<String>>> {
        consents::table
            .find((user.as_str(), client_id))
            .select(consents::scopes)
            .first::<String>(self)
            .optional()?
            .map(|s| from_json("consent scopes", &s))
            .transpose()
    }

    fn set_consent(
        &mut self,
        user: &UserId,
        client_id: &str,
        scopes: &[String],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let scopes = to_json(&scopes);
        let n = diesel::update(consents::table.find((user.as_str(), client_id)))
            .set((
                consents::scopes.eq(&scopes),
                consents::granted_at.eq(to_ts(now)),
            ))
            .execute(self)?;
        if n == 0 {
            diesel::insert_into(consents::table)
                .values((
                    consents::user_id.eq(user.as_str()),
                    consents::client_id.eq(client_id),
                    consents::scopes.eq(&scopes),
                    consents::granted_at.eq(to_ts(now)),
                ))
                .execute(self)?;
        }
        Ok(())
    }
}

impl RegistrationRepo for DbConn {
    fn insert_registration_token(&mut self, t: &RegistrationToken) -> Result<()> {
        diesel::insert_into(rt::table)
            .values((
                rt::token_hash.eq(&t.token_hash),
                rt::created_at.eq(to_ts(t.created_at)),
                rt::expires_at.eq(to_ts(t.expires_at)),
                rt::uses_left.eq(t.uses_left),
            ))
            .execute(self)?;
        Ok(())
    }

    fn spend_registration_token(&mut self, token_hash: &str, now: DateTime<Utc>) -> Result<bool> {
        // One conditional update: two registrations racing for the last use
        // cannot both win.
        let n = diesel::update(
            rt::table
                .find(token_hash)
                .filter(rt::uses_left.gt(0))
                .filter(rt::expires_at.gt(to_ts(now))),
        )
        .set(rt::uses_left.eq(rt::uses_left - 1))
        .execute(self)?;
        Ok(n == 1)
    }
}

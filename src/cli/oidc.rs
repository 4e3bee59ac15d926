//! `client` and `keys` commands.

use super::directory::{print_json, services};
use crate::config::Settings;
use crate::crypto::seal::Sealer;
use crate::domain::{AuthMethod, Client, GrantType, SigningAlg};
use crate::error::{Error, Result};
use crate::protocol::oidc::registration::{ClientDraft, DEFAULT_SCOPES, to_metadata};
use crate::protocol::oidc::scope;
use crate::service::Actor;
use crate::service::oidc::clients::{ClientChanges, ClientOptions};
use clap::Subcommand;
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register an OIDC client. Prints its client_id and, once, its secret.
    Add(Box<AddClient>),
    /// List clients.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Change a client's settings; unnamed settings stay as they are.
    Update {
        client_id: String,
        /// RS256, ES256 or EdDSA: signs the access tokens issued from now on.
        #[arg(long = "access-token-alg")]
        access_token_alg: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one client.
    Show {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new client secret; the old one stops working at once.
    RotateSecret {
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a client and everything issued to it.
    Remove { client_id: String },
    /// Create an initial access token for dynamic client registration.
    RegistrationToken {
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// How many registrations it allows.
        #[arg(long, default_value_t = 1)]
        uses: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args, Debug)]
pub struct AddClient {
    #[arg(long)]
    name: String,
    /// Exact redirect URI; repeat for several.
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    /// Where the client may send users after logout; repeat for several.
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// A public client (browser or native app): no secret, PKCE always.
    #[arg(long)]
    public: bool,
    /// client_secret_basic (default), client_secret_post or private_key_jwt.
    #[arg(long = "auth-method")]
    auth_method: Option<String>,
    /// Comma-separated: authorization_code, refresh_token, client_credentials.
    #[arg(long = "grant-types", value_delimiter = ',')]
    grant_types: Vec<String>,
    /// Space- or comma-separated scopes the client may request.
    #[arg(long)]
    scopes: Option<String>,
    /// RS256 (default), ES256 or EdDSA.
    #[arg(long = "id-token-alg")]
    id_token_alg: Option<String>,
    /// RS256 (default), ES256 or EdDSA: signs the client's access tokens.
    #[arg(long = "access-token-alg")]
    access_token_alg: Option<String>,
    /// A JWK Set file with the client's public keys (private_key_jwt).
    #[arg(long)]
    jwks: Option<std::path::PathBuf>,
    #[arg(long = "backchannel-logout-uri")]
    backchannel_logout_uri: Option<String>,
    /// Do not require PKCE (legacy confidential clients only).
    #[arg(long = "no-pkce")]
    no_pkce: bool,
    /// A first-party application: users are not asked for consent.
    #[arg(long = "first-party")]
    first_party: bool,
    #[arg(long = "access-token-ttl", value_parser = humantime::parse_duration)]
    access_token_ttl: Option<Duration>,
    #[arg(long = "id-token-ttl", value_parser = humantime::parse_duration)]
    id_token_ttl: Option<Duration>,
    #[arg(long = "refresh-token-ttl", value_parser = humantime::parse_duration)]
    refresh_token_ttl: Option<Duration>,
    #[arg(long)]
    json: bool,
    /// The weakest sign-in the client accepts: pwd, mfa or phr.
    #[arg(long)]
    require: Option<String>,
    /// A privileged client: sign-in needs an active elevation of this role.
    #[arg(long = "require-role")]
    require_role: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Add new signing keys and a new SAML certificate (published now, used
    /// after keys.publish_ahead) and drop keys whose tokens have all expired.
    Rotate {
        /// Sign with the new keys at once (after a compromise).
        #[arg(long)]
        now: bool,
    },
    /// List the signing keys.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print a fresh value for keys.encryption_key.
    GenerateSecret,
}

fn client_json(c: &Client) -> Value {
    let mut v = to_metadata(c);
    v["require_pkce"] = json!(c.require_pkce);
    v["consent_required"] = json!(c.consent_required);
    v["access_token_ttl"] = json!(c.access_token_ttl);
    v["id_token_ttl"] = json!(c.id_token_ttl);
    v["refresh_token_ttl"] = json!(c.refresh_token_ttl);
    v["required_role"] = json!(c.required_role);
    v["access_token_alg"] = json!(c.access_token_alg.as_str());
    v
}

/// The value of an algorithm option, or an error naming the allowed ones.
fn signing_alg(option: &str, value: Option<&str>) -> Result<Option<SigningAlg>> {
    value
        .map(|a| {
            SigningAlg::parse(a).ok_or_else(|| {
                Error::invalid(format!("unknown {option} {a}; use RS256, ES256 or EdDSA"))
            })
        })
        .transpose()
}

fn secs(d: Option<Duration>) -> Option<i64> {
    d.map(|d| d.as_secs() as i64)
}

pub async fn client(settings: Settings, cmd: ClientCommand) -> Result<()> {
    let svc = services(settings).await?;
    let actor = Actor::cli();
    match cmd {
        ClientCommand::Add(add) => {
            let AddClient {
                name,
                redirect_uris,
                post_logout_redirect_uris,
                public,
                auth_method,
                grant_types,
                scopes,
                id_token_alg,
                access_token_alg,
                jwks,
                backchannel_logout_uri,
                no_pkce,
                first_party,
                access_token_ttl,
                id_token_ttl,
                refresh_token_ttl,
                require,
                require_role,
                json,
            } = *add;
            let auth_method = match (public, auth_method.as_deref()) {
                (true, None | Some("none")) => AuthMethod::None,
                (true, Some(m)) => return Err(Error::invalid(format!("--public cannot be combined with --auth-method {m}"))),
                (false, None) => AuthMethod::ClientSecretBasic,
                (false, Some(m)) => AuthMethod::parse(m).ok_or_else(|| {
                    Error::invalid(format!("unknown --auth-method {m}; use client_secret_basic, client_secret_post or private_key_jwt"))
                })?,
            };
            let grant_types = if grant_types.is_empty() {
                vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
            } else {
                grant_types
                    .iter()
                    .map(|g| {
                        GrantType::parse(g.trim())
                            .ok_or_else(|| Error::invalid(format!("unknown grant type {g}")))
                    })
                    .collect::<Result<_>>()?
            };
            let id_token_alg = signing_alg("--id-token-alg", id_token_alg.as_deref())?
                .unwrap_or(SigningAlg::RS256);
            let access_token_alg = signing_alg("--access-token-alg", access_token_alg.as_deref())?
                .unwrap_or(SigningAlg::RS256);
            let jwks = match jwks {
                None => None,
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .map_err(|e| Error::invalid(format!("cannot read {}: {e}", p.display())))?;
                    Some(
                        serde_json::from_str(&text).map_err(|e| {
                            Error::invalid(format!("{} is not JSON: {e}", p.display()))
                        })?,
                    )
                }
            };
            let draft = ClientDraft {
                name,
                auth_method,
                redirect_uris,
                post_logout_redirect_uris,
                grant_types,
                scopes: scope::parse(
                    &scopes
                        .unwrap_or_else(|| DEFAULT_SCOPES.into())
                        .replace(',', " "),
                ),
                id_token_alg,
                jwks,
                backchannel_logout_uri,
            };
            let opts = ClientOptions {
                require_pkce: !no_pkce,
                consent_required: !first_party,
                access_token_ttl: secs(access_token_ttl),
                id_token_ttl: secs(id_token_ttl),
                refresh_token_ttl: secs(refresh_token_ttl),
                required_acr: require,
                required_role: require_role,
                access_token_alg,
            };
            let created = svc.create_client(&actor, draft, opts).await?;
            if json {
                let mut v = client_json(&created.client);
                if let Some(s) = &created.secret {
                    v["client_secret"] = json!(s);
                }
                return print_json(&v);
            }
            println!("client_id:     {}", created.client.client_id);
            if let Some(s) = &created.secret {
                println!("client_secret: {s}");
                println!("(the secret is shown only this once)");
            }
        }
        ClientCommand::List { json } => {
            let clients = svc.list_clients().await?;
            if json {
                return print_json(&clients.iter().map(client_json).collect::<Vec<_>>());
            }
            println!(
                "{:<34} {:<20} {:<20} REDIRECT URIS",
                "CLIENT ID", "NAME", "AUTH"
            );
            for c in clients {
                println!(
                    "{:<34} {:<20} {:<20} {}",
                    c.client_id,
                    c.name,
                    c.auth_method.as_str(),
                    c.redirect_uris.join(" ")
                );
            }
        }
        ClientCommand::Update {
            client_id,
            access_token_alg,
            json,
        } => {
            let changes = ClientChanges {
                access_token_alg: signing_alg("--access-token-alg", access_token_alg.as_deref())?,
            };
            let c = svc.update_client(&actor, &client_id, changes).await?;
            if json {
                return print_json(&client_json(&c));
            }
            println!("updated client {client_id}");
        }
        ClientCommand::Show { client_id, json } => {
            let c = svc.need_client(&client_id).await?;
            let v = client_json(&c);
            if json {
                return print_json(&v);
            }
            let text =
                serde_json::to_string_pretty(&v).map_err(|e| Error::internal(e.to_string()))?;
            println!("{text}");
        }
        ClientCommand::RotateSecret { client_id, json } => {
            let secret = svc.rotate_client_secret(&actor, &client_id).await?;
            if json {
                return print_json(&json!({"client_id": client_id, "client_secret": secret}));
            }
            println!("client_secret: {secret}");
            println!("(the old secret no longer works; this one is shown only once)");
        }
        ClientCommand::Remove { client_id } => {
            svc.remove_client(&actor, &client_id).await?;
            println!("removed client {client_id}");
        }
        ClientCommand::RegistrationToken { ttl, uses, json } => {
            let ttl = chrono::Duration::from_std(ttl).map_err(|e| Error::invalid(e.to_string()))?;
            let token = svc.create_registration_token(&actor, ttl, uses).await?;
            if json {
                return print_json(
                    &json!({"initial_access_token": token, "expires_in": ttl.num_seconds(), "uses": uses}),
                );
            }
            println!("{token}");
        }
    }
    Ok(())
}

pub async fn keys(settings: Settings, cmd: KeysCommand) -> Result<()> {
    if let KeysCommand::GenerateSecret = cmd {
        println!("{}", Sealer::generate_key_base64());
        return Ok(());
    }
    let svc = services(settings).await?;
    match cmd {
        KeysCommand::Rotate { now } => {
            svc.ensure_keys().await?;
            let created = svc.rotate_keys(&Actor::cli(), now).await?;
            for k in created {
                println!(
                    "{} {} signs from {}",
                    k.alg,
                    k.kid,
                    k.activates_at.to_rfc3339()
                );
            }
            svc.ensure_saml_cert().await?;
            let cert = svc.rotate_saml_cert(&Actor::cli(), now).await?;
            println!(
                "SAML certificate {} signs from {}",
                cert.id,
                cert.activates_at.to_rfc3339()
            );
        }
        KeysCommand::List { json } => {
            let stored = svc.db(|r| r.keys()).await?;
            let rows: Vec<Value> = stored
                .iter()
                .map(|k| json!({"kid": k.kid, "alg": k.alg, "created_at": k.created_at, "activates_at": k.activates_at}))
                .collect();
            if json {
                return print_json(&rows);
            }
            for k in stored {
                println!(
                    "{:<6} {} created {} signs from {}",
                    k.alg.as_str(),
                    k.kid,
                    k.created_at.to_rfc3339(),
                    k.activates_at.to_rfc3339()
                );
            }
        }
        KeysCommand::GenerateSecret => {}
    }
    Ok(())
}

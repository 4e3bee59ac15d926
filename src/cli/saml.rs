//! `sp` commands: the SAML service-provider registry.

use super::directory::{print_json, services};
use crate::config::Settings;
use crate::domain::{NameIdFormat, ServiceProvider};
use crate::error::{Error, Result};
use crate::service::Actor;
use crate::service::saml::registry::SpInput;
use clap::Subcommand;
use serde_json::{Value, json};

#[derive(clap::Args, Debug)]
pub struct AddSp {
    /// SP metadata: a file, or an http(s) URL fetched once now.
    #[arg(long)]
    metadata: Option<String>,
    /// Entity ID (when not given by metadata).
    #[arg(long = "entity-id")]
    entity_id: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Assertion consumer service URL (HTTP-POST); repeat for several.
    #[arg(long = "acs-url")]
    acs_urls: Vec<String>,
    #[arg(long = "slo-url")]
    slo_url: Option<String>,
    /// The SP's request-signing certificate (PEM file).
    #[arg(long = "signing-cert")]
    signing_cert: Option<std::path::PathBuf>,
    /// persistent (default), email or unspecified.
    #[arg(long = "nameid-format")]
    nameid_format: Option<String>,
    /// SOURCE=NAME, e.g. email=mail; SOURCE is email, name, username, groups, roles or id.
    #[arg(long = "attribute")]
    attributes: Vec<String>,
    /// Refuse unsigned AuthnRequests from this SP.
    #[arg(long = "require-signed-requests")]
    require_signed_requests: bool,
    /// Accept unsigned LogoutRequests from this SP (one without a signing
    /// certificate). Off by default: such an SP's logout is then refused.
    #[arg(long = "allow-unsigned-logout")]
    allow_unsigned_logout: bool,
    /// The weakest sign-in the SP accepts: pwd, mfa or phr.
    #[arg(long)]
    require: Option<String>,
    /// A privileged SP: sign-in needs an active elevation of this role.
    #[arg(long = "require-role")]
    require_role: Option<String>,
    /// Where the SP takes back-channel (SOAP) LogoutRequests.
    #[arg(long = "soap-slo-url")]
    soap_slo_url: Option<String>,
    /// What to sign: both (default), response or assertion.
    #[arg(long, default_value = "both")]
    sign: String,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub enum SpCommand {
    /// Register a SAML service provider from its metadata or from fields.
    Add(Box<AddSp>),
    /// List service providers.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one service provider.
    Show {
        entity_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a service provider.
    Remove { entity_id: String },
}

fn sp_json(sp: &ServiceProvider) -> Value {
    serde_json::to_value(sp).unwrap_or_else(|_| json!({}))
}

fn read_file(p: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(p)
        .map_err(|e| Error::invalid(format!("cannot read {}: {e}", p.display())))
}

async fn add(settings: Settings, a: AddSp) -> Result<()> {
    let metadata = match a.metadata {
        Some(m) if m.starts_with("https://") || m.starts_with("http://") => Some(m),
        Some(m) => Some(read_file(std::path::Path::new(&m))?),
        None => None,
    };
    let nameid_format = match a.nameid_format.as_deref() {
        None => None,
        Some(f) => Some(NameIdFormat::parse(f).ok_or_else(|| {
            Error::invalid(format!(
                "unknown --nameid-format {f}; use persistent, email or unspecified"
            ))
        })?),
    };
    let attributes = a
        .attributes
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| {
                    Error::invalid(format!("--attribute {kv:?} must look like SOURCE=NAME"))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let (sign_response, sign_assertion) = match a.sign.as_str() {
        "both" => (true, true),
        "response" => (true, false),
        "assertion" => (false, true),
        other => {
            return Err(Error::invalid(format!(
                "unknown --sign {other}; use both, response or assertion"
            )));
        }
    };
    let input = SpInput {
        metadata,
        entity_id: a.entity_id,
        name: a.name,
        acs_urls: a.acs_urls,
        slo_url: a.slo_url,
        signing_cert: a.signing_cert.as_deref().map(read_file).transpose()?,
        nameid_format,
        attributes,
        want_authn_requests_signed: a.require_signed_requests.then_some(true),
        sign_response,
        sign_assertion,
        required_acr: a.require,
        required_role: a.require_role,
        soap_slo_url: a.soap_slo_url,
        allow_unsigned_logout: a.allow_unsigned_logout,
    };
    let svc = services(settings).await?;
    let sp = svc.add_sp(&Actor::cli(), input).await?;
    if a.json {
        return print_json(&sp_json(&sp));
    }
    println!("registered {} ({})", sp.entity_id, sp.name);
    Ok(())
}

pub async fn sp(settings: Settings, cmd: SpCommand) -> Result<()> {
    if let SpCommand::Add(a) = cmd {
        return add(settings, *a).await;
    }
    let svc = services(settings).await?;
    match cmd {
        SpCommand::Add(_) => {}
        SpCommand::List { json } => {
            let sps = svc.list_sps().await?;
            if json {
                return print_json(&sps.iter().map(sp_json).collect::<Vec<_>>());
            }
            println!("{:<40} {:<20} ACS", "ENTITY ID", "NAME");
            for s in sps {
                let acs: Vec<&str> = s.acs.iter().map(|a| a.url.as_str()).collect();
                println!("{:<40} {:<20} {}", s.entity_id, s.name, acs.join(" "));
            }
        }
        SpCommand::Show { entity_id, json } => {
            let s = svc
                .sp(&entity_id)
                .await?
                .ok_or_else(|| Error::not_found(format!("no service provider {entity_id}")))?;
            let v = sp_json(&s);
            if json {
                return print_json(&v);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&v).map_err(|e| Error::internal(e.to_string()))?
            );
        }
        SpCommand::Remove { entity_id } => {
            svc.remove_sp(&Actor::cli(), &entity_id).await?;
            println!("removed {entity_id}");
        }
    }
    Ok(())
}

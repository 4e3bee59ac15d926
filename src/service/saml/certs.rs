//! The IdP's SAML signing key and certificate: created on first start,
//! sealed at rest, rotated with the next certificate published in metadata
//! before it is used.

use crate::domain::SamlCert;
use crate::error::{Error, ErrorKind, Result};
use crate::service::{Actor, Services, record};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, Utc};
use samael::idp::{CertificateParams, IdentityProvider, KeyType, Rsa};
use serde_json::json;

/// Set by the node that created the first certificate.
const FIRST_CERT_MARKER: &str = "saml.first_cert";

fn aad(id: &str) -> Vec<u8> {
    format!("portcullis-saml-key:{id}").into_bytes()
}

/// The key that signs now and the certificates metadata lists.
pub struct SamlSigner {
    pub private_key_der: Vec<u8>,
    pub certificate: String,
}

/// The certificate that signs at `now`: the latest already active.
fn active(certs: &[SamlCert], now: DateTime<Utc>) -> Option<&SamlCert> {
    certs
        .iter()
        .filter(|c| c.activates_at <= now)
        .max_by_key(|c| (c.activates_at, c.id.clone()))
}

impl Services {
    async fn new_saml_cert(&self, activates_at: DateTime<Utc>) -> Result<SamlCert> {
        let host = url::Url::parse(&self.issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_else(|| "portcullis".into());
        let (der, cert) = Self::cpu(move || -> Result<(Vec<u8>, Vec<u8>)> {
            let idp = IdentityProvider::generate_new(KeyType::Rsa(Rsa::Rsa2048))
                .map_err(|e| Error::internal(format!("SAML key generation: {e:?}")))?;
            let cert = idp
                .create_certificate(&CertificateParams {
                    common_name: &host,
                    issuer_name: &host,
                    days_until_expiration: 3650,
                })
                .map_err(|e| Error::internal(format!("SAML certificate: {e:?}")))?;
            let der = idp
                .export_private_key_der()
                .map_err(|e| Error::internal(format!("SAML key export: {e:?}")))?;
            Ok((der, cert.der_data().to_vec()))
        })
        .await??;
        let id = uuid::Uuid::new_v4().simple().to_string();
        Ok(SamlCert {
            sealed_private_key: self.keys.seal(&der, &aad(&id)),
            certificate: STANDARD.encode(cert),
            id,
            created_at: self.now(),
            activates_at,
        })
    }

    /// Creates the first certificate when there is none. Nodes starting
    /// together on an empty database all find none; the marker row (a
    /// unique key, inserted with the certificate) lets exactly one of them
    /// create it, and the others keep the winner's.
    pub async fn ensure_saml_cert(&self) -> Result<()> {
        if !self.db(|r| r.saml_certs()).await?.is_empty() {
            return Ok(());
        }
        let c = self.new_saml_cert(self.now()).await?;
        let created = self
            .db(move |r| {
                if !r.saml_certs()?.is_empty() {
                    return Ok(());
                }
                r.insert_meta(FIRST_CERT_MARKER, &c.created_at.to_rfc3339())?;
                r.insert_saml_cert(&c)?;
                record(
                    r,
                    c.created_at,
                    &Actor::system(),
                    "saml.cert_create",
                    &c.id,
                    json!({}),
                )
            })
            .await;
        match created {
            Err(e) if e.kind == ErrorKind::Conflict => Ok(()),
            other => other,
        }
    }

    /// Adds the next certificate (listed in metadata at once, signing after
    /// `keys.publish_ahead`, or now) and drops ones long superseded.
    pub async fn rotate_saml_cert(&self, actor: &Actor, immediately: bool) -> Result<SamlCert> {
        let now = self.now();
        let ahead = if immediately {
            Duration::zero()
        } else {
            Duration::from_std(self.settings.keys.publish_ahead).unwrap_or(Duration::hours(1))
        };
        let c = self.new_saml_cert(now + ahead).await?;
        let certs = self.db(|r| r.saml_certs()).await?;
        // A superseded certificate stays listed a day, for SPs that cache metadata.
        let keep_after = Duration::days(1);
        let drop: Vec<String> = certs
            .iter()
            .filter(|old| {
                certs.iter().any(|n| {
                    n.activates_at > old.activates_at && n.activates_at + keep_after <= now
                })
            })
            .map(|o| o.id.clone())
            .collect();
        let (cert, actor) = (c.clone(), actor.clone());
        self.db(move |r| {
            r.insert_saml_cert(&cert)?;
            for id in &drop {
                r.delete_saml_cert(id)?;
            }
            record(
                r,
                now,
                &actor,
                "saml.cert_rotate",
                &cert.id,
                json!({"removed": drop}),
            )
        })
        .await?;
        Ok(c)
    }

    /// Certificates for metadata: the active one first, then upcoming and
    /// recently retired ones.
    pub async fn saml_metadata_certs(&self) -> Result<Vec<String>> {
        let certs = self.db(|r| r.saml_certs()).await?;
        let now = self.now();
        let current = active(&certs, now).map(|c| c.id.clone());
        let mut out: Vec<String> = certs
            .iter()
            .filter(|c| Some(&c.id) == current.as_ref())
            .map(|c| c.certificate.clone())
            .collect();
        out.extend(
            certs
                .iter()
                .filter(|c| Some(&c.id) != current.as_ref())
                .map(|c| c.certificate.clone()),
        );
        Ok(out)
    }

    pub async fn saml_signer(&self) -> Result<SamlSigner> {
        let certs = self.db(|r| r.saml_certs()).await?;
        let c = active(&certs, self.now())
            .ok_or_else(|| Error::internal("no active SAML certificate"))?;
        Ok(SamlSigner {
            private_key_der: self.keys.open(&c.sealed_private_key, &aad(&c.id))?,
            certificate: c.certificate.clone(),
        })
    }
}

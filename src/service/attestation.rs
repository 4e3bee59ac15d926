//! The attestation CAs an administrator trusts (`webauthn.attestation_ca_files`),
//! read once at start-up.

use crate::config::Settings;
use crate::error::{Error, Result};
use webauthn_rs::prelude::{AttestationCaList, AttestationCaListBuilder};

const SETTING: &str = "webauthn.attestation_ca_files";

fn refused(msg: String) -> Error {
    Error::invalid(format!("configuration key `{SETTING}`: {msg}"))
}

/// Every certificate in the configured PEM files, each allowed to vouch for
/// the models in `webauthn.allowed_aaguids` (or for any model when that list
/// is empty). `None` when no files are configured.
pub fn attestation_cas(settings: &Settings) -> Result<Option<AttestationCaList>> {
    let w = &settings.webauthn;
    if w.attestation_ca_files.is_empty() {
        return Ok(None);
    }
    let mut certs = Vec::new();
    for path in &w.attestation_ca_files {
        let pem = std::fs::read(path)
            .map_err(|e| refused(format!("cannot read {}: {e}", path.display())))?;
        let stack = openssl::x509::X509::stack_from_pem(&pem)
            .ok()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                refused(format!(
                    "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                    path.display()
                ))
            })?;
        for cert in stack {
            let der = cert.to_der().map_err(|e| {
                refused(format!(
                    "{}: a certificate does not encode: {e}",
                    path.display()
                ))
            })?;
            certs.push((path, der));
        }
    }
    let unreadable = |path: &std::path::PathBuf, e: &dyn std::fmt::Display| {
        refused(format!(
            "{}: a certificate is not usable: {e}",
            path.display()
        ))
    };
    if w.allowed_aaguids.is_empty() {
        let mut list = AttestationCaList::default();
        for (path, der) in &certs {
            let pem = openssl::x509::X509::from_der(der)
                .and_then(|c| c.to_pem())
                .map_err(|e| unreadable(path, &e))?;
            let one =
                AttestationCaList::try_from(pem.as_slice()).map_err(|e| unreadable(path, &e))?;
            list.union(&one);
        }
        return Ok(Some(list));
    }
    let mut builder = AttestationCaListBuilder::new();
    for (path, der) in &certs {
        for aaguid in &w.allowed_aaguids {
            builder
                .insert_device_der(der, *aaguid, aaguid.to_string(), Default::default())
                .map_err(|e| unreadable(path, &e))?;
        }
    }
    Ok(Some(builder.build()))
}

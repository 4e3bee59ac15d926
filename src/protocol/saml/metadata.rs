//! IdP metadata out, SP metadata in.

use super::{reject_dtd, xml_escape};
use crate::domain::{AcsEndpoint, Binding, NameIdFormat};
use std::str::FromStr;

const MD: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// The IdP's URLs.
pub struct IdpUrls {
    pub entity_id: String,
    pub sso: String,
    pub slo: String,
}

impl IdpUrls {
    pub fn for_issuer(issuer: &str) -> Self {
        Self {
            entity_id: format!("{issuer}/saml/metadata"),
            sso: format!("{issuer}/saml/sso"),
            slo: format!("{issuer}/saml/slo"),
        }
    }
}

/// The IdP's EntityDescriptor. `certificates` are base64 DER, current first;
/// during a rollover the next one is listed too.
pub fn idp_metadata(urls: &IdpUrls, certificates: &[String]) -> String {
    let mut keys = String::new();
    for c in certificates {
        keys.push_str(&format!(
            "    <md:KeyDescriptor use=\"signing\"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{c}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>\n"
        ));
    }
    let formats: String = [
        NameIdFormat::Persistent,
        NameIdFormat::Email,
        NameIdFormat::Unspecified,
    ]
    .iter()
    .map(|f| format!("    <md:NameIDFormat>{}</md:NameIDFormat>\n", f.urn()))
    .collect();
    let sso = xml_escape(&urls.sso);
    let slo = xml_escape(&urls.slo);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<md:EntityDescriptor xmlns:md=\"{MD}\" xmlns:ds=\"{DS}\" entityID=\"{entity}\">\n\
  <md:IDPSSODescriptor WantAuthnRequestsSigned=\"false\" protocolSupportEnumeration=\"urn:oasis:names:tc:SAML:2.0:protocol\">\n\
{keys}\
    <md:SingleLogoutService Binding=\"{redirect}\" Location=\"{slo}\"/>\n\
    <md:SingleLogoutService Binding=\"{post}\" Location=\"{slo}\"/>\n\
{formats}\
    <md:SingleSignOnService Binding=\"{redirect}\" Location=\"{sso}\"/>\n\
    <md:SingleSignOnService Binding=\"{post}\" Location=\"{sso}\"/>\n\
  </md:IDPSSODescriptor>\n\
</md:EntityDescriptor>\n",
        entity = xml_escape(&urls.entity_id),
        redirect = Binding::Redirect.urn(),
        post = Binding::Post.urn(),
    )
}

const BINDING_SOAP: &str = "urn:oasis:names:tc:SAML:2.0:bindings:SOAP";

/// What an SP's metadata says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpMetadata {
    pub entity_id: String,
    pub acs: Vec<AcsEndpoint>,
    pub slo: Option<(String, Binding)>,
    /// A SingleLogoutService with the SOAP binding (back-channel).
    pub soap_slo: Option<String>,
    pub signing_certs: Vec<String>,
    pub encryption_cert: Option<String>,
    pub authn_requests_signed: bool,
    pub nameid_format: Option<NameIdFormat>,
}

fn clean_cert(c: &str) -> String {
    c.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Reads an SP's EntityDescriptor.
pub fn parse_sp_metadata(xml: &str) -> Result<SpMetadata, String> {
    if xml.len() > super::MAX_XML {
        return Err("the metadata is too large".into());
    }
    reject_dtd(xml)?;
    let ed = super::guard("metadata", || {
        samael::metadata::EntityDescriptor::from_str(xml)
            .map_err(|e| format!("not SAML metadata: {e}"))
    })?;
    let entity_id = ed
        .entity_id
        .clone()
        .filter(|e| !e.is_empty())
        .ok_or("the metadata has no entityID")?;
    let sp = ed
        .sp_sso_descriptors
        .as_ref()
        .and_then(|v| v.first())
        .ok_or("the metadata has no SPSSODescriptor")?;
    let mut acs = Vec::new();
    for e in &sp.assertion_consumer_services {
        let Some(binding) = Binding::from_urn(&e.binding) else {
            continue;
        };
        acs.push(AcsEndpoint {
            url: e.location.clone(),
            binding,
            index: u16::try_from(e.index).map_err(|_| "an ACS index is too large")?,
            is_default: e.is_default.unwrap_or(false),
        });
    }
    if acs.is_empty() {
        return Err("the metadata has no AssertionConsumerService with the HTTP-POST or HTTP-Redirect binding".into());
    }
    let slo = sp
        .single_logout_services
        .iter()
        .flatten()
        .find_map(|e| Binding::from_urn(&e.binding).map(|b| (e.location.clone(), b)));
    let soap_slo = sp
        .single_logout_services
        .iter()
        .flatten()
        .find(|e| e.binding == BINDING_SOAP)
        .map(|e| e.location.clone());
    let mut signing_certs = Vec::new();
    let mut encryption_cert = None;
    for k in sp.key_descriptors.iter().flatten() {
        let certs = k
            .key_info
            .x509_data
            .as_ref()
            .map(|x| x.certificates.clone())
            .unwrap_or_default();
        for c in certs {
            match k.key_use.as_deref() {
                Some("encryption") => encryption_cert = encryption_cert.or(Some(clean_cert(&c))),
                Some("signing") => signing_certs.push(clean_cert(&c)),
                // No use attribute: the key serves both.
                _ => {
                    signing_certs.push(clean_cert(&c));
                    encryption_cert = encryption_cert.or(Some(clean_cert(&c)));
                }
            }
        }
    }
    let nameid_format = sp
        .name_id_formats
        .iter()
        .flatten()
        .find_map(|f| NameIdFormat::from_urn(f.trim()));
    Ok(SpMetadata {
        entity_id,
        acs,
        slo,
        soap_slo,
        signing_certs,
        encryption_cert,
        authn_requests_signed: sp.authn_requests_signed.unwrap_or(false),
        nameid_format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SP: &str = r#"<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://sp.example/saml">
  <md:SPSSODescriptor AuthnRequestsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
      MIIB
    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://sp.example/slo"/>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:SOAP" Location="https://sp.example/soap"/>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.example/acs" index="0" isDefault="true"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:PAOS" Location="https://sp.example/ecp" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>"#;

    #[test]
    fn sp_metadata_is_read() {
        let m = parse_sp_metadata(SP).unwrap();
        assert_eq!(m.entity_id, "https://sp.example/saml");
        assert_eq!(m.acs.len(), 1, "PAOS is skipped");
        assert!(m.acs[0].is_default);
        assert_eq!(m.signing_certs, ["MIIB"]);
        assert!(m.authn_requests_signed);
        assert_eq!(m.nameid_format, Some(NameIdFormat::Email));
        assert_eq!(
            m.slo,
            Some(("https://sp.example/slo".into(), Binding::Redirect))
        );
        assert_eq!(m.soap_slo.as_deref(), Some("https://sp.example/soap"));
    }

    #[test]
    fn bad_metadata_is_refused() {
        assert!(parse_sp_metadata("<x/>").is_err());
        assert!(
            parse_sp_metadata("<!DOCTYPE x><x/>")
                .unwrap_err()
                .contains("DTD")
        );
        let no_acs = SP.replace(
            "AssertionConsumerService Binding=\"urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST\"",
            "AssertionConsumerService Binding=\"urn:x\"",
        );
        assert!(parse_sp_metadata(&no_acs).is_err());
    }

    #[test]
    fn idp_metadata_parses_back() {
        let urls = IdpUrls::for_issuer("https://id.example");
        let xml = idp_metadata(&urls, &["AAA".into(), "BBB".into()]);
        let ed = samael::metadata::EntityDescriptor::from_str(&xml).unwrap();
        assert_eq!(
            ed.entity_id.as_deref(),
            Some("https://id.example/saml/metadata")
        );
        let idp = &ed.idp_sso_descriptors.unwrap()[0];
        assert_eq!(idp.single_sign_on_services.len(), 2);
        assert_eq!(idp.key_descriptors.len(), 2);
    }
}

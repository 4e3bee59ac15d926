//! SAML Responses and Assertions as XML, with signature templates where they
//! are to be signed. Signing itself (xmlsec) happens in the service.

use super::xml_escape;
use chrono::{DateTime, Utc};

pub const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
pub const STATUS_REQUESTER: &str = "urn:oasis:names:tc:SAML:2.0:status:Requester";
pub const STATUS_RESPONDER: &str = "urn:oasis:names:tc:SAML:2.0:status:Responder";
pub const STATUS_NO_PASSIVE: &str = "urn:oasis:names:tc:SAML:2.0:status:NoPassive";
pub const STATUS_REQUEST_DENIED: &str = "urn:oasis:names:tc:SAML:2.0:status:RequestDenied";
pub const STATUS_INVALID_NAMEID_POLICY: &str =
    "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy";
pub const STATUS_NO_AUTHN_CONTEXT: &str = "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext";

const SAMLP: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
const BASIC: &str = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic";

pub fn instant(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The SessionIndex one SP is given for one session: derived from the
/// session and the SP's entity ID, so it is useless to any other party (it
/// is neither the OIDC `sid` nor another SP's index) and cannot be guessed
/// without the session.
pub fn session_index_for(session_digest: &str, sp_entity_id: &str) -> String {
    use base64::Engine;
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(session_digest.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(b"portcullis-saml-session-index\0");
    mac.update(sp_entity_id.as_bytes());
    let d = mac.finalize().into_bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d[..16])
}

pub fn new_id() -> String {
    format!("_{}", uuid::Uuid::new_v4().simple())
}

/// An enveloped, exclusive-c14n, RSA-SHA256 signature template for the
/// element with `id`, carrying `cert` (base64 DER) in KeyInfo.
pub fn signature_template(id: &str, cert: &str) -> String {
    format!(
        "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><ds:SignedInfo>\
<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>\
<ds:SignatureMethod Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\"/>\
<ds:Reference URI=\"#{id}\"><ds:Transforms>\
<ds:Transform Algorithm=\"http://www.w3.org/2000/09/xmldsig#enveloped-signature\"/>\
<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>\
<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/><ds:DigestValue></ds:DigestValue>\
</ds:Reference></ds:SignedInfo><ds:SignatureValue></ds:SignatureValue>\
<ds:KeyInfo><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>"
    )
}

/// One attribute with its values.
pub struct Attribute {
    pub name: String,
    pub format: Option<String>,
    pub values: Vec<String>,
}

/// Everything an assertion states.
pub struct AssertionInput<'a> {
    pub idp_entity_id: &'a str,
    pub sp_entity_id: &'a str,
    pub acs_url: &'a str,
    pub in_response_to: Option<&'a str>,
    pub name_id: &'a str,
    pub name_id_format: &'a str,
    pub now: DateTime<Utc>,
    /// The assertion and its bearer confirmation are valid until then.
    pub not_on_or_after: DateTime<Utc>,
    pub authn_instant: DateTime<Utc>,
    pub session_index: &'a str,
    pub session_not_on_or_after: DateTime<Utc>,
    pub authn_context_class: &'a str,
    pub attributes: &'a [Attribute],
}

/// The Assertion element; with `cert`, it carries a signature template.
pub fn assertion(a: &AssertionInput<'_>, id: &str, cert: Option<&str>) -> String {
    let e = xml_escape;
    let in_response_to = a
        .in_response_to
        .map(|r| format!(" InResponseTo=\"{}\"", e(r)))
        .unwrap_or_default();
    let mut attrs = String::new();
    for at in a.attributes {
        let format = e(at.format.as_deref().unwrap_or(BASIC));
        attrs.push_str(&format!(
            "<saml:Attribute Name=\"{}\" NameFormat=\"{format}\">",
            e(&at.name)
        ));
        for v in &at.values {
            attrs.push_str(&format!(
                "<saml:AttributeValue xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" \
xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"xs:string\">{}</saml:AttributeValue>",
                e(v)
            ));
        }
        attrs.push_str("</saml:Attribute>");
    }
    let attribute_statement = if attrs.is_empty() {
        String::new()
    } else {
        format!("<saml:AttributeStatement>{attrs}</saml:AttributeStatement>")
    };
    format!(
        "<saml:Assertion xmlns:saml=\"{SAML}\" ID=\"{id}\" Version=\"2.0\" IssueInstant=\"{now}\">\
<saml:Issuer>{idp}</saml:Issuer>{sig}\
<saml:Subject><saml:NameID Format=\"{fmt}\" SPNameQualifier=\"{sp}\">{name_id}</saml:NameID>\
<saml:SubjectConfirmation Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\">\
<saml:SubjectConfirmationData{in_response_to} NotOnOrAfter=\"{noa}\" Recipient=\"{acs}\"/>\
</saml:SubjectConfirmation></saml:Subject>\
<saml:Conditions NotBefore=\"{now}\" NotOnOrAfter=\"{noa}\"><saml:AudienceRestriction>\
<saml:Audience>{sp}</saml:Audience></saml:AudienceRestriction></saml:Conditions>\
<saml:AuthnStatement AuthnInstant=\"{authn}\" SessionIndex=\"{si}\" SessionNotOnOrAfter=\"{snoa}\">\
<saml:AuthnContext><saml:AuthnContextClassRef>{class}</saml:AuthnContextClassRef></saml:AuthnContext>\
</saml:AuthnStatement>{attribute_statement}</saml:Assertion>",
        now = instant(a.now),
        idp = e(a.idp_entity_id),
        sig = cert.map(|c| signature_template(id, c)).unwrap_or_default(),
        fmt = e(a.name_id_format),
        sp = e(a.sp_entity_id),
        name_id = e(a.name_id),
        noa = instant(a.not_on_or_after),
        acs = e(a.acs_url),
        authn = instant(a.authn_instant),
        si = e(a.session_index),
        snoa = instant(a.session_not_on_or_after),
        class = e(a.authn_context_class),
    )
}

/// The status of a Response: a top-level code and, for failures, a second
/// level code and message.
pub struct Status<'a> {
    pub code: &'a str,
    pub sub_code: Option<&'a str>,
    pub message: Option<&'a str>,
}

pub const SUCCESS: Status<'static> = Status {
    code: STATUS_SUCCESS,
    sub_code: None,
    message: None,
};

/// A Response wrapping `body` (an assertion, or nothing on failure). The
/// signature template goes right after the Issuer, as the schema wants.
#[allow(clippy::too_many_arguments)]
pub fn response(
    id: &str,
    idp_entity_id: &str,
    destination: &str,
    in_response_to: Option<&str>,
    now: DateTime<Utc>,
    status: &Status<'_>,
    signature: Option<&str>,
    body: &str,
) -> String {
    let e = xml_escape;
    let in_response_to = in_response_to
        .map(|r| format!(" InResponseTo=\"{}\"", e(r)))
        .unwrap_or_default();
    format!(
        "<samlp:Response xmlns:samlp=\"{SAMLP}\" xmlns:saml=\"{SAML}\" ID=\"{id}\"{in_response_to} Version=\"2.0\" \
IssueInstant=\"{now}\" Destination=\"{dest}\"><saml:Issuer>{idp}</saml:Issuer>{sig}\
{status}{body}</samlp:Response>",
        now = instant(now),
        dest = e(destination),
        idp = e(idp_entity_id),
        sig = signature.unwrap_or_default(),
        status = status_xml(status),
    )
}

/// The samlp:Status element for `status`.
pub fn status_xml(status: &Status<'_>) -> String {
    let sub = status
        .sub_code
        .map(|s| format!("<samlp:StatusCode Value=\"{}\"/>", xml_escape(s)))
        .unwrap_or_default();
    let message = status
        .message
        .map(|m| {
            format!(
                "<samlp:StatusMessage>{}</samlp:StatusMessage>",
                xml_escape(m)
            )
        })
        .unwrap_or_default();
    format!(
        "<samlp:Status><samlp:StatusCode Value=\"{}\">{sub}</samlp:StatusCode>{message}</samlp:Status>",
        xml_escape(status.code)
    )
}

/// Where a Response's signature template goes when it is added after the
/// assertion was signed: right after the Response's own Issuer.
pub fn insert_after_first_issuer(xml: &str, template: &str) -> Option<String> {
    let end = xml.find("</saml:Issuer>")? + "</saml:Issuer>".len();
    Some(format!("{}{}{}", &xml[..end], template, &xml[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_indexes_differ_per_sp_and_from_the_sid() {
        let a = session_index_for("digest", "https://a.example");
        assert_eq!(a, session_index_for("digest", "https://a.example"));
        assert_ne!(a, session_index_for("digest", "https://b.example"));
        assert_ne!(a, session_index_for("digest2", "https://a.example"));
        assert_ne!(a, crate::protocol::oidc::claims::sid_for("digest"));
    }

    #[test]
    fn response_shape() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let x = response(
            "_r",
            "idp",
            "https://sp/acs",
            Some("_q"),
            now,
            &SUCCESS,
            None,
            "<b/>",
        );
        assert!(x.starts_with("<samlp:Response"));
        assert!(x.contains("InResponseTo=\"_q\""));
        assert!(x.contains("IssueInstant=\"2023-11-14T22:13:20Z\""));
        let signed_later = insert_after_first_issuer(&x, "<S/>").unwrap();
        assert!(signed_later.contains("<saml:Issuer>idp</saml:Issuer><S/><samlp:Status>"));
        let failed = response(
            "_r",
            "idp",
            "d",
            None,
            now,
            &Status {
                code: STATUS_RESPONDER,
                sub_code: Some(STATUS_NO_PASSIVE),
                message: Some("a<b"),
            },
            None,
            "",
        );
        assert!(failed.contains(STATUS_NO_PASSIVE));
        assert!(failed.contains("a&lt;b"));
        assert!(!failed.contains("InResponseTo"));
    }
}

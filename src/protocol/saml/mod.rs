//! SAML 2.0 rules: message decoding with limits, metadata in and out,
//! request checks, NameIDs.

pub mod dsig;
pub mod encrypt;
pub mod logout;
pub mod metadata;
#[cfg(test)]
mod proptests;
pub mod request;
pub mod response;

/// Largest base64 message accepted on either binding.
pub const MAX_ENCODED: usize = 64 * 1024;
/// Largest XML a message may inflate or decode to.
pub const MAX_XML: usize = 256 * 1024;

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Runs a call into a third-party SAML parser or verifier: a panic inside
/// it becomes an error for this message, never an aborted connection.
pub fn guard<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(format!("the {what} could not be processed")))
}

/// Refuses document type declarations: no DTDs, no entities, ever.
pub fn reject_dtd(xml: &str) -> Result<(), String> {
    let lower = xml.to_ascii_lowercase();
    if lower.contains("<!doctype") || lower.contains("<!entity") {
        return Err("XML with a document type declaration (DTD) is not accepted".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(xml_escape(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    #[test]
    fn panics_become_errors() {
        assert_eq!(guard("x", || Ok(1)), Ok(1));
        let r: Result<(), String> = guard("message", || panic!("third-party bug"));
        assert_eq!(r.unwrap_err(), "the message could not be processed");
    }

    #[test]
    fn dtds_are_refused() {
        assert!(reject_dtd("<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><x>&e;</x>").is_err());
        assert!(reject_dtd("<x/>").is_ok());
    }
}

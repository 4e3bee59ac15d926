//! URLs the server itself calls on behalf of a client that registered
//! itself (RFC 7591): they may only lead to public addresses, so that
//! registration cannot aim the server at its own network. Checked on the
//! URL at registration ([`check_public_url`]) and again on the addresses its
//! name resolves to at send time ([`check_resolved`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn public_v6(ip: Ipv6Addr) -> bool {
    // IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4) is judged as IPv4.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0; 6] {
        // `::`, `::1` and the deprecated IPv4-compatible form.
        return false;
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return public_v4(Ipv4Addr::new(a, b, c, d));
    }
    if s[0] == 0x2002 {
        let [a, b] = s[1].to_be_bytes();
        let [c, d] = s[2].to_be_bytes();
        return public_v4(Ipv4Addr::new(a, b, c, d));
    }
    let global_unicast = s[0] & 0xe000 == 0x2000;
    let teredo = s[0] == 0x2001 && s[1] == 0;
    let documentation = s[0] == 0x2001 && s[1] == 0xdb8;
    global_unicast && !teredo && !documentation
}

/// Whether the server may call `ip` for a self-registered client: not
/// loopback, private, link-local, unique-local, multicast, unspecified or
/// otherwise reserved, also when written as IPv4 inside IPv6.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

/// Checks a URL a self-registered client wants the server to call: https,
/// no credentials, and a public host — an IP address must be public, a
/// name must be a fully qualified one that is not reserved for local use.
pub fn check_public_url(uri: &str) -> Result<(), String> {
    let u = Url::parse(uri).map_err(|e| format!("{uri:?} is not an absolute URL: {e}"))?;
    if u.scheme() != "https" {
        return Err(format!("{uri:?} must use https"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!("{uri:?} must not contain credentials"));
    }
    if uri.len() > 2000 {
        return Err("URLs must be at most 2000 characters".into());
    }
    match u.host() {
        Some(Host::Ipv4(ip)) if public_v4(ip) => Ok(()),
        Some(Host::Ipv6(ip)) if public_v6(ip) => Ok(()),
        Some(Host::Ipv4(_) | Host::Ipv6(_)) => {
            Err(format!("{uri:?} points at an address that is not public"))
        }
        Some(Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            let local = ["localhost", "local", "internal", "localdomain", "home.arpa"]
                .iter()
                .any(|s| d == *s || d.ends_with(&format!(".{s}")));
            if local || !d.contains('.') {
                Err(format!("{uri:?} must name a public host"))
            } else {
                Ok(())
            }
        }
        None => Err(format!("{uri:?} has no host")),
    }
}

/// Checks the addresses a name resolved to at send time: there must be
/// some, and every one must be public (a name that also resolves to an
/// internal address is refused altogether).
pub fn check_resolved(addrs: &[IpAddr]) -> Result<(), String> {
    if addrs.is_empty() {
        return Err("the host name resolves to no address".into());
    }
    match addrs.iter().find(|a| !is_public_ip(**a)) {
        Some(a) => Err(format!(
            "the host name resolves to {a}, which is not public"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for a in [
            "127.0.0.1",
            "127.255.0.9",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "2001:0:4136:e378::1",
        ] {
            assert!(!is_public_ip(ip(a)), "{a}");
        }
        for a in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
            "64:ff9b::808:808",
        ] {
            assert!(is_public_ip(ip(a)), "{a}");
        }
    }

    #[test]
    fn only_https_to_public_hosts() {
        for bad in [
            "http://127.0.0.1:8080/internal/x",
            "http://rp.example.com/logout",
            "https://127.0.0.1/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://[::1]/x",
            "https://[::ffff:7f00:1]/x",
            "https://10.0.0.5/x",
            "https://169.254.169.254/latest/meta-data",
            "https://localhost/x",
            "https://api.localhost/x",
            "https://LOCALHOST./x",
            "https://printer.local/x",
            "https://intranet/x",
            "https://user:pw@rp.example.com/x",
            "not a url",
            "file:///etc/passwd",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
        for good in [
            "https://rp.example.com/logout",
            "https://93.184.216.34:8443/bcl",
            "https://[2606:4700:4700::1111]/bcl",
        ] {
            assert_eq!(check_public_url(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn every_resolved_address_must_be_public() {
        assert!(check_resolved(&[]).is_err());
        assert!(check_resolved(&[ip("127.0.0.1")]).is_err());
        assert!(check_resolved(&[ip("93.184.216.34"), ip("10.0.0.1")]).is_err());
        assert!(check_resolved(&[ip("::ffff:127.0.0.1")]).is_err());
        assert_eq!(check_resolved(&[ip("93.184.216.34")]), Ok(()));
    }
}

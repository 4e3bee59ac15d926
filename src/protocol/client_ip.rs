//! Which address a request really came from.
//!
//! `X-Forwarded-For` (or RFC 7239 `Forwarded`) is only believed through
//! configured proxies: starting at the socket peer, walk the hops right to
//! left while the hop we are at is a trusted proxy. The first untrusted hop
//! is the client. Anything a client puts at the left is therefore ignored.
//! A header may arrive as several lines (a proxy that appends its own line
//! rather than extending the client's): the lines are joined in order first,
//! so the client's own line is never the only one read.

use ipnet::IpNet;
use std::net::IpAddr;

/// Every `X-Forwarded-For` line, joined in order into one list.
pub fn join_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    let joined: Vec<&str> = lines.collect();
    (!joined.is_empty()).then(|| joined.join(","))
}

/// The `for=` nodes of every `Forwarded` line (RFC 7239), in order, as an
/// `X-Forwarded-For`-style list. A node that is not an address (`unknown`,
/// an obfuscated `_name`) is kept as is, so the walk stops there.
pub fn forwarded_to_list<'a>(lines: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut hops = Vec::new();
    for line in lines {
        for element in line.split(',') {
            let node = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            });
            let Some(node) = node else {
                // An element without `for=` says nothing of this hop.
                hops.push("unknown".to_string());
                continue;
            };
            hops.push(forwarded_node_address(node));
        }
    }
    (!hops.is_empty()).then(|| hops.join(","))
}

/// `"[2001:db8::1]:4711"` → `2001:db8::1`, `192.0.2.1:80` → `192.0.2.1`.
fn forwarded_node_address(node: &str) -> String {
    let n = node.trim_matches('"');
    if let Some(rest) = n.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match n.split_once(':') {
        Some((host, _port)) if host.parse::<std::net::Ipv4Addr>().is_ok() => host.to_string(),
        _ => n.to_string(),
    }
}

/// The unit that address-based throttling counts: an IPv4 address, or an
/// IPv6 /64 (one subscriber usually holds a whole /64, and could otherwise
/// rotate through 2^64 addresses). IPv4-mapped IPv6 counts as IPv4.
pub fn throttle_unit(ip: &str) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_string(),
    }
}

pub fn resolve(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut current = peer;
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A garbled entry ends what we can believe.
            return current;
        };
        current = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<IpNet> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn header_from_an_untrusted_peer_is_ignored() {
        let got = resolve(ip("198.51.100.7"), Some("10.0.0.1"), &nets(&["10.0.0.0/8"]));
        assert_eq!(got, ip("198.51.100.7"));
    }

    #[test]
    fn no_trusted_proxies_means_the_peer() {
        assert_eq!(
            resolve(ip("10.0.0.2"), Some("203.0.113.9"), &[]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let got = resolve(
            ip("10.0.0.2"),
            Some("1.2.3.4, 203.0.113.9, 10.0.0.5"),
            &trusted,
        );
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn spoofed_left_entries_cannot_win() {
        let trusted = nets(&["10.0.0.0/8"]);
        let got = resolve(ip("10.0.0.2"), Some("10.9.9.9, 203.0.113.9"), &trusted);
        assert_eq!(got, ip("203.0.113.9"));
    }

    #[test]
    fn garbage_stops_at_the_last_good_hop() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(ip("10.0.0.2"), Some("nonsense"), &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            resolve(
                ip("10.0.0.2"),
                Some("203.0.113.1, junk, 10.0.0.3"),
                &trusted
            ),
            ip("10.0.0.3")
        );
    }

    #[test]
    fn ipv6_throttles_per_64() {
        assert_eq!(throttle_unit("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            throttle_unit("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            throttle_unit("2001:db8:1:2::9")
        );
        assert_ne!(
            throttle_unit("2001:db8:1:3::1"),
            throttle_unit("2001:db8:1:2::1")
        );
        assert_eq!(throttle_unit("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(throttle_unit("192.0.2.1"), "192.0.2.1");
        assert_eq!(throttle_unit("unknown"), "unknown");
    }

    #[test]
    fn every_line_is_read_in_order() {
        // The client sends its own line; the proxy appends another.
        let trusted = nets(&["10.0.0.0/8"]);
        let joined = join_lines(["10.1.1.1", "203.0.113.9"].into_iter()).unwrap();
        assert_eq!(
            resolve(ip("10.0.0.2"), Some(&joined), &trusted),
            ip("203.0.113.9")
        );
        assert_eq!(join_lines(std::iter::empty()), None);
    }

    #[test]
    fn forwarded_is_understood() {
        let trusted = nets(&["10.0.0.0/8"]);
        let list = forwarded_to_list(
            [
                "for=10.9.9.9;proto=https",
                "for=\"[2001:db8::7]:4711\";by=10.0.0.1, For=192.0.2.60:8080",
            ]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(list, "10.9.9.9,2001:db8::7,192.0.2.60");
        assert_eq!(
            resolve(ip("10.0.0.2"), Some(&list), &trusted),
            ip("192.0.2.60")
        );
        // An obfuscated or unknown node ends what can be believed.
        let list = forwarded_to_list(["for=unknown, for=10.0.0.7"].into_iter()).unwrap();
        assert_eq!(
            resolve(ip("10.0.0.2"), Some(&list), &trusted),
            ip("10.0.0.7")
        );
        let list = forwarded_to_list(["proto=https"].into_iter()).unwrap();
        assert_eq!(
            resolve(ip("10.0.0.2"), Some(&list), &trusted),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn all_trusted_yields_the_leftmost() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        assert_eq!(
            resolve(ip("::1"), Some("10.1.1.1"), &trusted),
            ip("10.1.1.1")
        );
    }
}

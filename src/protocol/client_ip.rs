//! Which address a request really came from.
//!
//! `X-Forwarded-For` is only believed through configured proxies: starting at
//! the socket peer, walk the header right to left while the hop we are at is a
//! trusted proxy. The first untrusted hop is the client. Anything a client puts
//! at the left of the header is therefore ignored.

use ipnet::IpNet;
use std::net::IpAddr;

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
    fn all_trusted_yields_the_leftmost() {
        let trusted = nets(&["10.0.0.0/8", "::1/128"]);
        assert_eq!(
            resolve(ip("::1"), Some("10.1.1.1"), &trusted),
            ip("10.1.1.1")
        );
    }
}

//! Sending to a URL a self-registered client gave: the URL is checked
//! again, its name resolved, every address checked, and the connection made
//! to exactly the checked addresses (no proxy, no redirects), so a name that
//! resolves somewhere internal — now or by the time of the call — is
//! refused.

use crate::protocol::oidc::outbound::{check_public_url, check_resolved};
use std::future::Future;
use std::net::SocketAddr;
use url::{Host, Url};

/// A destination that passed the checks: where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The host name, when the URL had one.
    pub name: Option<String>,
    pub addrs: Vec<SocketAddr>,
}

/// Checks `uri` and the addresses `lookup` resolves its host to.
pub async fn check_destination<F, Fut>(uri: &str, lookup: F) -> Result<Checked, String>
where
    F: FnOnce(String, u16) -> Fut,
    Fut: Future<Output = std::io::Result<Vec<SocketAddr>>>,
{
    check_public_url(uri)?;
    let u = Url::parse(uri).map_err(|e| e.to_string())?;
    let port = u
        .port_or_known_default()
        .ok_or_else(|| format!("{uri:?} has no port"))?;
    let (name, addrs) = match u.host() {
        Some(Host::Domain(d)) => {
            let found = lookup(d.to_string(), port)
                .await
                .map_err(|e| format!("{d} does not resolve: {e}"))?;
            (Some(d.to_string()), found)
        }
        Some(Host::Ipv4(ip)) => (None, vec![SocketAddr::new(ip.into(), port)]),
        Some(Host::Ipv6(ip)) => (None, vec![SocketAddr::new(ip.into(), port)]),
        None => return Err(format!("{uri:?} has no host")),
    };
    let ips: Vec<_> = addrs.iter().map(SocketAddr::ip).collect();
    check_resolved(&ips)?;
    Ok(Checked { name, addrs })
}

/// The system resolver.
pub async fn system_lookup(host: String, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    Ok(tokio::net::lookup_host((host.as_str(), port))
        .await?
        .collect())
}

/// A resolver that answers every name with the checked addresses, so the
/// client cannot fall back to resolving anything itself.
struct Fixed(Vec<SocketAddr>);

impl reqwest::dns::Resolve for Fixed {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let addrs = self.0.clone();
        Box::pin(async move { Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs) })
    }
}

impl Checked {
    /// An HTTP client that connects only to the checked addresses: no
    /// proxy, no redirects, no resolving of its own.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(Fixed(self.addrs.clone())))
            .build()
            .map_err(|e| format!("http client: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolving_to(
        ip: &'static str,
    ) -> impl FnOnce(String, u16) -> std::future::Ready<std::io::Result<Vec<SocketAddr>>> {
        move |_, port| std::future::ready(Ok(vec![SocketAddr::new(ip.parse().unwrap(), port)]))
    }

    #[tokio::test]
    async fn a_public_name_that_resolves_inside_is_refused() {
        let uri = "https://rp.example.com/logout";
        for inside in [
            "127.0.0.1",
            "10.0.0.7",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.169.254",
        ] {
            let r = check_destination(uri, resolving_to(inside)).await;
            assert!(r.unwrap_err().contains("not public"), "{inside}");
        }
        let ok = check_destination(uri, resolving_to("93.184.216.34"))
            .await
            .unwrap();
        assert_eq!(ok.name.as_deref(), Some("rp.example.com"));
        assert_eq!(ok.addrs, vec!["93.184.216.34:443".parse().unwrap()]);
        assert!(ok.client().is_ok());
    }

    #[tokio::test]
    async fn the_client_connects_to_the_checked_address_only() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = sock.read(&mut buf).await.unwrap();
            let host = String::from_utf8_lossy(&buf[..n]).contains("rp.example.invalid");
            let status = if host {
                "204 No Content"
            } else {
                "400 Bad Request"
            };
            let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
            sock.write_all(reply.as_bytes()).await.unwrap();
        });
        // A name nobody can resolve reaches the pinned address.
        let pinned = Checked {
            name: Some("rp.example.invalid".into()),
            addrs: vec![addr],
        };
        let url = format!("http://rp.example.invalid:{}/", addr.port());
        let r = pinned.client().unwrap().get(&url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 204);
    }

    #[tokio::test]
    async fn the_url_is_checked_again_before_any_lookup() {
        let never = |_: String, _: u16| async { panic!("must not resolve") };
        for bad in [
            "http://127.0.0.1:9/x",
            "https://localhost:9/x",
            "https://[::1]/x",
        ] {
            assert!(check_destination(bad, never).await.is_err(), "{bad}");
        }
        let unresolvable = |_: String, _: u16| async {
            Err::<Vec<SocketAddr>, _>(std::io::Error::other("no such host"))
        };
        assert!(
            check_destination("https://rp.example.com/", unresolvable)
                .await
                .is_err()
        );
    }
}

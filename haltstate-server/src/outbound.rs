//! Where the server posts on its own (webhooks, the checkpoint witness). Operators choose those URLs, but the
//! server's network position is not theirs to borrow: a target on loopback, link-local (the cloud metadata
//! address), private or otherwise non-public addresses is refused, however it is spelt (`0x7f.1`,
//! `2130706433`, `[::ffff:127.0.0.1]`) and whatever a name resolves to at the moment of sending (a name that
//! resolves to a public address when added and to `127.0.0.1` later is refused then). `allow_private` lifts it,
//! for receivers on the operator's own network. Redirects are never followed.
//!
//! ```
//! use haltstate_server::outbound;
//!
//! assert!(outbound::check_url("https://hooks.example.com/x", false).is_ok());
//! assert!(outbound::check_url("http://169.254.169.254/latest/meta-data", false).is_err());
//! assert!(outbound::check_url("http://0x7f.1:8080/", false).is_err());
//! assert!(outbound::check_url("http://127.0.0.1:8080/", true).is_ok());
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// Not an `http` or `https` URL with a host.
    #[error("not an http(s) URL with a host: {0}")]
    NotHttp(String),
    /// The host is (or resolves to) an address the server does not post to.
    #[error(
        "refused: {host} is a {kind} address ({address}); the server posts only to public addresses unless \
         started with --allow-private-targets"
    )]
    NotPublic {
        /// The URL's host.
        host: String,
        /// The address.
        address: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
}

/// What kind of non-public address `address` is, or `None` for a public one.
pub fn non_public(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| v6.to_ipv4()) {
            // `::ffff:127.0.0.1` and `::127.0.0.1` reach the IPv4 address.
            Some(v4) if !v6.is_loopback() => non_public_v4(v4),
            _ => non_public_v6(v6),
        },
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_link_local() {
        "link-local"
    } else if ip.is_private() {
        "private"
    } else if ip.is_unspecified() || a == 0 {
        "unspecified"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (carrier-grade NAT)"
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        "multicast or reserved"
    } else if ip.is_documentation() || (a == 198 && (b == 18 || b == 19)) || (a == 192 && b == 0) {
        "reserved"
    } else {
        return None;
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if first & 0xffc0 == 0xfe80 {
        "link-local"
    } else if first & 0xfe00 == 0xfc00 {
        "unique local (private)"
    } else if ip.is_multicast() {
        "multicast"
    } else if first == 0x2001 && ip.segments()[1] == 0x0db8 {
        "documentation"
    } else if first == 0x0064 && ip.segments()[1] == 0xff9b {
        // NAT64 maps IPv4 into this prefix, private ranges included.
        "NAT64"
    } else {
        return None;
    })
}

/// Checks `url`'s scheme and, when its host is an address, that address: what can be known without resolving.
/// Names are checked again when resolved, at each attempt ([`client`]).
///
/// # Errors
/// [`OutboundError`] when the URL is not `http(s)` with a host, or names a non-public address.
pub fn check_url(url: &str, allow_private: bool) -> Result<(), OutboundError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| OutboundError::NotHttp(redacted(url)))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(OutboundError::NotHttp(redacted(url)));
    }
    let address = match parsed.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(OutboundError::NotHttp(redacted(url))),
    };
    match non_public(address).filter(|_| !allow_private) {
        Some(kind) => Err(OutboundError::NotPublic {
            host: parsed.host_str().unwrap_or_default().to_owned(),
            address,
            kind,
        }),
        None => Ok(()),
    }
}

/// A URL's scheme and host only: the path and query may hold a token (Slack's URLs are secrets).
pub fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}{}/***",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(not a URL)".to_owned(),
    }
}

/// The HTTP client for posting to operators' targets: no redirects, `timeout` per attempt, and (unless
/// `allow_private`) a resolver that refuses names resolving to non-public addresses.
///
/// # Errors
/// When the client cannot be built (no TLS roots, say).
pub fn client(allow_private: bool, timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder()
        // A receiver that redirects is misconfigured; following it would post signed data elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("haltstate/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout);
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder.build()
}

/// Resolves with the system's resolver, then keeps public addresses only; none left is an error.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| non_public(a.ip()).is_none())
                .collect();
            match (public.is_empty(), found.first()) {
                (false, _) => Ok(Box::new(public.into_iter()) as Addrs),
                (true, Some(first)) => Err(Box::new(OutboundError::NotPublic {
                    host,
                    address: first.ip(),
                    kind: non_public(first.ip()).unwrap_or("non-public"),
                }) as _),
                (true, None) => Err(format!("{host} resolves to no address").into()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_a_private_address_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://10.0.0.1/",
            "http://172.16.5.4/",
            "http://192.168.1.1/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[64:ff9b::a00:1]/",
        ] {
            assert!(
                matches!(check_url(url, false), Err(OutboundError::NotPublic { .. })),
                "{url}"
            );
            assert!(
                check_url(url, true).is_ok(),
                "{url} with private targets allowed"
            );
        }
        for url in [
            "https://hooks.slack.com/services/x",
            "http://93.184.216.34/",
            "http://[2606:4700::1]/",
        ] {
            assert!(check_url(url, false).is_ok(), "{url}");
        }
        assert!(matches!(
            check_url("file:///etc/passwd", true),
            Err(OutboundError::NotHttp(_))
        ));
    }

    #[test]
    fn a_redacted_url_keeps_no_path_or_query() {
        assert_eq!(
            redacted("https://hooks.slack.com/services/T0/B0/secret?token=x"),
            "https://hooks.slack.com/***"
        );
    }

    /// A receiver that redirects is answered as it is: the redirect is never followed (it would post signed data
    /// elsewhere), so the place it points to hears nothing.
    #[tokio::test]
    async fn redirects_are_never_followed() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let followed = Arc::new(AtomicUsize::new(0));
        let counter = followed.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::TEMPORARY_REDIRECT,
                        [(axum::http::header::LOCATION, "/elsewhere")],
                    )
                }),
            )
            .route(
                "/elsewhere",
                axum::routing::post(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async { "got it" }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let answer = client(true, Duration::from_secs(5))
            .unwrap()
            .post(format!("http://{addr}/hook"))
            .body("signed")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            followed.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_when_sent_to() {
        let client = client(false, Duration::from_secs(5)).unwrap();
        let error = client
            .post("http://localhost:9/hook")
            .send()
            .await
            .unwrap_err();
        let chain = std::iter::successors(Some(&error as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains("loopback"), "{chain}");
    }
}

//! TLS to PostgreSQL: libpq's `sslmode`, `sslrootcert`, `sslcert` and `sslkey` URL parameters, read here (the
//! driver knows only `disable`, `prefer` and `require`, and no certificate files) and turned into a rustls
//! connector.
//!
//! What each mode promises, as libpq's documentation states it:
//! - `disable`: no TLS. `prefer`: TLS when the server offers it. `require`: TLS always. None of the three checks
//!   who answers, unless `sslrootcert` is given (then, as in libpq, the chain is checked as in `verify-ca`).
//! - `verify-ca`: TLS, and the server's certificate chains to `sslrootcert`. `verify-full`: and it names the host.
//!
//! Without `sslmode`, a URL whose hosts are all loopback (or Unix sockets) means `prefer`, any other `require`:
//! credentials and evidence do not cross a network in clear text unless the operator writes `sslmode=disable`.
//! `sslrootcert=system` trusts the system's roots (rustls-native-certs).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use postgres::config::{Host, SslMode};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{AuthorityError, Result};

/// The `sslmode` values libpq knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

/// Where the root certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Roots {
    File(PathBuf),
    System,
}

/// What a URL asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tls {
    pub(crate) mode: Mode,
    pub(crate) roots: Option<Roots>,
    pub(crate) client_cert: Option<(PathBuf, PathBuf)>,
}

fn refused(why: impl Into<String>) -> AuthorityError {
    AuthorityError::DatabaseConfig(why.into())
}

/// Splits the TLS parameters off a `postgres://` URL: the driver's configuration (its `sslmode` set from ours)
/// and what TLS must do.
pub(crate) fn parse(url: &str) -> Result<(postgres::Config, Tls)> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let (mut mode, mut roots, mut cert, mut key) = (None, None, None, None);
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || {
            percent_decode_str(value)
                .decode_utf8()
                .map(|v| v.into_owned())
                .map_err(|_| refused(format!("{name}: not UTF-8")))
        };
        match name {
            "sslmode" => {
                mode = Some(match decoded()?.as_str() {
                    "disable" => Mode::Disable,
                    "prefer" => Mode::Prefer,
                    "require" => Mode::Require,
                    "verify-ca" => Mode::VerifyCa,
                    "verify-full" => Mode::VerifyFull,
                    // libpq's `allow` tries clear text first: a downgrade an attacker on the path can force.
                    other => {
                        return Err(refused(format!(
                            "sslmode={other}: expected disable, prefer, require, verify-ca or verify-full"
                        )));
                    }
                })
            }
            "sslrootcert" => {
                roots = Some(match decoded()?.as_str() {
                    "system" => Roots::System,
                    path => Roots::File(PathBuf::from(path)),
                })
            }
            "sslcert" => cert = Some(PathBuf::from(decoded()?)),
            "sslkey" => key = Some(PathBuf::from(decoded()?)),
            "sslpassword"
            | "sslcrl"
            | "sslcrldir"
            | "sslsni"
            | "sslcompression"
            | "ssl_min_protocol_version"
            | "ssl_max_protocol_version" => {
                return Err(refused(format!(
                    "{name} is not supported (supported: sslmode, sslrootcert, sslcert, sslkey)"
                )));
            }
            _ => kept.push(pair),
        }
    }
    let client_cert = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => return Err(refused("sslcert and sslkey go together")),
    };
    let driver_url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    let mut config: postgres::Config = driver_url
        .parse()
        .map_err(|e: postgres::Error| refused(format!("cannot read the PostgreSQL URL: {e}")))?;
    let mode = match mode {
        Some(mode) => mode,
        None if all_loopback(&config) => Mode::Prefer,
        None => Mode::Require,
    };
    if matches!(mode, Mode::VerifyCa | Mode::VerifyFull) && roots.is_none() {
        return Err(refused(
            "sslmode=verify-ca and verify-full need sslrootcert: a CA file, or `system` for the system's roots",
        ));
    }
    if mode == Mode::Disable && (roots.is_some() || client_cert.is_some()) {
        return Err(refused(
            "sslmode=disable with certificates: say which is meant",
        ));
    }
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    Ok((
        config,
        Tls {
            mode,
            roots,
            client_cert,
        },
    ))
}

/// Whether every host the URL names is this machine (a Unix socket, `localhost`, a loopback address).
fn all_loopback(config: &postgres::Config) -> bool {
    let hosts = config.get_hosts();
    let addrs = config.get_hostaddrs();
    if hosts.is_empty() && addrs.is_empty() {
        // The driver refuses to connect without a host: nothing crosses a network.
        return true;
    }
    hosts.iter().all(|host| match host {
        Host::Unix(_) => true,
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
    }) && addrs.iter().all(IpAddr::is_loopback)
}

impl Tls {
    /// The connector for the driver. With `disable` the driver never calls it.
    pub(crate) fn connector(&self) -> Result<MakeRustlsConnect> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| refused(format!("TLS: {e}")))?;
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.roots, self.mode) {
            (None, _) => Arc::new(Unverified(provider)),
            (Some(roots), mode) => {
                let webpki = WebPkiServerVerifier::builder_with_provider(
                    Arc::new(self.root_store(roots)?),
                    provider,
                )
                .build()
                .map_err(|e| refused(format!("sslrootcert: {e}")))?;
                if mode == Mode::VerifyFull {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = CertificateDer::pem_file_iter(cert)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| refused(format!("sslcert {}: {e}", cert.display())))?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| refused(format!("sslkey {}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| refused(format!("sslcert and sslkey: {e}")))?
            }
        };
        Ok(MakeRustlsConnect::new(config))
    }

    fn root_store(&self, roots: &Roots) -> Result<RootCertStore> {
        let mut store = RootCertStore::empty();
        match roots {
            Roots::File(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<std::result::Result<Vec<_>, _>>())
                    .map_err(|e| refused(format!("sslrootcert {}: {e}", path.display())))?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(refused(format!(
                        "sslrootcert {}: no certificate in it",
                        path.display()
                    )));
                }
            }
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                store.add_parsable_certificates(found.certs);
                if store.is_empty() {
                    return Err(refused(
                        "sslrootcert=system: the system has no root certificates",
                    ));
                }
            }
        }
        Ok(store)
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name in the certificate is not compared with the
/// host (libpq's meaning: for servers reached by an address their certificate does not name).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            // The chain verified before the name was compared: webpki checks the path first.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` and `require` without `sslrootcert`: encryption, no check of who answers (libpq's meaning). The
/// handshake's signatures are still checked, so the session is bound to the certificate presented.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(url: &str) -> Mode {
        parse(url).unwrap().1.mode
    }

    #[test]
    fn without_sslmode_a_remote_host_requires_tls_and_loopback_prefers_it() {
        assert_eq!(mode("postgres://app@db.internal:5432/hs"), Mode::Require);
        assert_eq!(mode("postgres://app@10.0.0.7/hs"), Mode::Require);
        assert_eq!(mode("postgres://app@127.0.0.1:5432/hs"), Mode::Prefer);
        assert_eq!(mode("postgres://app@localhost/hs"), Mode::Prefer);
        assert_eq!(mode("postgres://app@[::1]:5432/hs"), Mode::Prefer);
        assert_eq!(
            mode("postgres://app@localhost,db.internal/hs"),
            Mode::Require
        );
        assert_eq!(
            mode("postgres://app@/hs?host=%2Fvar%2Frun%2Fpostgresql"),
            Mode::Prefer
        );
        assert_eq!(
            mode("postgres://app@db.internal/hs?sslmode=disable"),
            Mode::Disable
        );
    }

    #[test]
    fn the_tls_parameters_are_taken_off_the_url_and_the_rest_kept() {
        let (config, tls) = parse(
            "postgres://app@db.internal/hs?application_name=hs&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem\
             &sslcert=c.pem&sslkey=k.pem&connect_timeout=5",
        )
        .unwrap();
        assert_eq!(tls.mode, Mode::VerifyFull);
        assert_eq!(tls.roots, Some(Roots::File("/etc/ca.pem".into())));
        assert_eq!(tls.client_cert, Some(("c.pem".into(), "k.pem".into())));
        assert_eq!(config.get_application_name(), Some("hs"));
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
        assert_eq!(
            parse("postgres://app@db/hs?sslrootcert=system")
                .unwrap()
                .1
                .roots,
            Some(Roots::System)
        );
    }

    #[test]
    fn a_tls_parameter_that_cannot_be_honoured_is_refused_by_name() {
        for (url, expected) in [
            ("postgres://a@db/hs?sslmode=allow", "sslmode=allow"),
            ("postgres://a@db/hs?sslmode=verify-full", "need sslrootcert"),
            ("postgres://a@db/hs?sslcert=c.pem", "go together"),
            ("postgres://a@db/hs?sslcrl=x", "sslcrl is not supported"),
            (
                "postgres://a@db/hs?sslmode=disable&sslrootcert=system",
                "disable",
            ),
        ] {
            let error = parse(url).unwrap_err().to_string();
            assert!(error.contains(expected), "{url}: {error}");
        }
        let missing = parse("postgres://a@db/hs?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem")
            .unwrap()
            .1
            .connector()
            .err()
            .unwrap()
            .to_string();
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }
}

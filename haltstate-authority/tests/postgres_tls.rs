//! TLS to PostgreSQL, against a real server that accepts TLS connections only (`hostssl` lines, no `host`), with
//! certificates this test makes: each `sslmode` that encrypts connects, clear text is refused, a certificate from
//! another CA or for another name is refused where the mode checks it, and a client certificate signs a user in.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{TENANT, guard_refund};
use haltstate_authority::{Authority, AuthorityError, Database, GuardStatus};
use haltstate_testkit::postgres::{PgServer, PgTls};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// A CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca {
        pem,
        issuer: Issuer::new(params, key),
    }
}

/// A leaf certificate signed by `ca`: (certificate PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str], common_name: &str) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn open(url: &str) -> Result<Authority, AuthorityError> {
    Authority::builder(Database::parse(url))
        .policy_source("refunds", haltstate_testkit::policies::REFUNDS)
        .open()
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path.display().to_string()
}

#[test]
fn a_tls_only_postgres_is_reached_over_tls_and_refused_in_clear_text_or_with_the_wrong_certificate()
{
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, client_ca, other_ca) = (ca("server ca"), ca("client ca"), ca("someone else"));
    // The certificate names `localhost` only: reached as 127.0.0.1, only a check that skips the name accepts it.
    let (cert_pem, key_pem) = leaf(&server_ca, &["localhost"], "localhost");
    let server = PgServer::start_tls(&PgTls {
        cert_pem,
        key_pem,
        client_ca_pem: client_ca.pem.clone(),
        hba: "local all all trust\n\
              hostssl all certuser 127.0.0.1/32 cert\n\
              hostssl all all 127.0.0.1/32 trust\n"
            .to_owned(),
    });
    // Set up over the Unix socket (the test's own client speaks no TLS): a user that signs in by certificate.
    let mut admin = postgres::Client::connect(
        &format!(
            "host={} port={} user=postgres dbname=postgres",
            server.socket_dir().display(),
            server.port()
        ),
        postgres::NoTls,
    )
    .unwrap();
    for statement in [
        "CREATE ROLE certuser LOGIN",
        "CREATE DATABASE certdb OWNER certuser",
        "CREATE DATABASE hs",
    ] {
        admin.batch_execute(statement).unwrap();
    }
    let ca_file = write(dir.path(), "ca.pem", &server_ca.pem);
    let other_file = write(dir.path(), "other.pem", &other_ca.pem);
    let port = server.port();
    let url = |host: &str, params: &str| format!("postgres://postgres@{host}:{port}/hs?{params}");

    // Clear text: the server has no line for it.
    let clear = open(&url("127.0.0.1", "sslmode=disable"))
        .err()
        .unwrap()
        .to_string();
    assert!(clear.contains("no encryption"), "{clear}");

    // Encrypting modes, and the default on loopback (prefer), connect; the ledger works through them.
    for params in [
        String::new(),
        "sslmode=prefer".to_owned(),
        "sslmode=require".to_owned(),
        format!("sslmode=verify-ca&sslrootcert={ca_file}"),
    ] {
        let authority =
            open(&url("127.0.0.1", &params)).unwrap_or_else(|e| panic!("{params}: {e}"));
        let answer = authority
            .guard(TENANT, guard_refund(100, &format!("refund:{params}")))
            .wait()
            .unwrap();
        assert_eq!(answer.status, GuardStatus::Allowed, "{params}");
    }
    open(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca_file}"),
    ))
    .unwrap();

    // Certificates the mode checks, refused: another CA (even for `require` once a root is named, as in
    // libpq), and a name the certificate does not carry.
    for (host, params) in [
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={other_file}"),
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={other_file}"),
        ),
        (
            "127.0.0.1",
            format!("sslmode=require&sslrootcert={other_file}"),
        ),
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ca_file}"),
        ),
    ] {
        let refused = open(&url(host, &params)).err().unwrap();
        assert!(
            matches!(refused, AuthorityError::Unavailable(_)),
            "{host} {params}: {refused:?}"
        );
        let text = refused.to_string();
        assert!(text.contains("certificate"), "{host} {params}: {text}");
    }

    // A client certificate signs `certuser` in; without one the server refuses it.
    let (client_cert, client_key) = leaf(&client_ca, &[], "certuser");
    let (cert_file, key_file) = (
        write(dir.path(), "client.pem", &client_cert),
        write(dir.path(), "client.key", &client_key),
    );
    let as_certuser =
        |host: &str, params: &str| format!("postgres://certuser@{host}:{port}/certdb?{params}");
    let refused = open(&as_certuser("127.0.0.1", "sslmode=require"))
        .err()
        .unwrap()
        .to_string();
    assert!(refused.contains("certificate"), "{refused}");
    let authority = open(&as_certuser(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca_file}&sslcert={cert_file}&sslkey={key_file}"),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    drop(authority);
}

//! Webhooks end to end: the real `haltstate serve` posting to a real receiver on loopback. Signatures are checked
//! here with the algorithm the Standard Webhooks specification documents, written out independently of the
//! server's code.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use haltstate_testkit::{Received, WebhookReceiver, eventually};

const POLICY: &str = haltstate_testkit::policies::REFUNDS;
const WITHIN: Duration = Duration::from_secs(20);

fn haltstate(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "haltstate {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Adds a webhook posting every event to `url`; answers its secret.
fn add_webhook(db: &Path, url: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "webhooks",
        "add",
        "--db",
        db.to_str().unwrap(),
        "--tenant",
        "acme",
        "--url",
        url,
        "--as",
        "oncall",
        // The test's receiver listens on loopback.
        "--allow-private-target",
    ];
    args.extend_from_slice(extra);
    String::from_utf8(haltstate(&args).stdout)
        .unwrap()
        .trim()
        .to_owned()
}

/// The signature the specification defines: `v1,` + base64(HMAC-SHA256(base64-decoded secret after `whsec_`,
/// `id.timestamp.body`)).
fn expected_signature(secret: &str, received: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.", received.id, received.timestamp).as_bytes());
    mac.update(&received.body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

async fn guard(base: &str, key: &str, cents: i64, idempotency_key: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base}/api/sentinel/action/guard"))
        .header("X-Tenant-Id", "acme")
        .header("X-API-Key", key)
        .json(&json!({"action": "refund.create", "params": {"amount_cents": cents, "note": "<secret note>"},
                      "idempotency_key": idempotency_key}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn wait_for(receiver: &WebhookReceiver, count: usize) -> Vec<Received> {
    eventually(&format!("{count} webhook requests"), WITHIN, || {
        let received = receiver.received();
        (received.len() >= count).then_some(received)
    })
}

#[tokio::test]
async fn approvals_and_kill_switches_arrive_signed_with_a_link_to_the_console() {
    let setup = common::setup(POLICY);
    let receiver = WebhookReceiver::start();
    let secret = add_webhook(&setup.db, &receiver.url(), &[]);
    assert!(secret.starts_with("whsec_"), "{secret}");
    let server = common::serve(
        &setup.db,
        &setup.policy,
        &[
            "--public-url",
            "https://hs.example.com/",
            "--allow-private-targets",
        ],
    );

    let pending = guard(server.base_url(), &setup.key, 90_000, "hook:1").await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let approval = pending["approval_id"].as_str().unwrap().to_owned();
    let requested = wait_for(&receiver, 1).remove(0);
    assert_eq!(requested.signature, expected_signature(&secret, &requested));
    assert!(requested.id.starts_with("msg_"), "{}", requested.id);
    assert_eq!(requested.content_type, "application/json");
    let sent_at: i64 = requested.timestamp.parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (now - sent_at).abs() <= 60,
        "timestamp {sent_at}, now {now}"
    );
    let body = requested.json();
    assert_eq!(body["type"], "approval.requested");
    assert_eq!(body["data"]["approval_id"], approval.as_str());
    assert_eq!(body["data"]["action"], "refund.create");
    assert_eq!(body["data"]["agent_id"], "load");
    assert_eq!(body["data"]["idempotency_key"], "hook:1");
    assert_eq!(
        body["data"]["url"],
        format!("https://hs.example.com/ui/approvals/{approval}")
    );
    assert!(
        !String::from_utf8_lossy(&requested.body).contains("secret note"),
        "params left the authority: {body}"
    );
    // A body changed on the way, or signed with another secret, does not verify.
    let mut forged = requested.clone();
    forged.body = requested.body.replace_first(b"refund", b"refunD");
    assert_ne!(requested.signature, expected_signature(&secret, &forged));
    let other = add_webhook(
        &setup.db,
        "http://127.0.0.1:9/never",
        &["--events", "approval.expired"],
    );
    assert_ne!(requested.signature, expected_signature(&other, &requested));

    let db = setup.db.to_str().unwrap();
    haltstate(&[
        "approvals",
        "approve",
        &approval,
        "--db",
        db,
        "--tenant",
        "acme",
        "--as",
        "alice",
    ]);
    let decided = wait_for(&receiver, 2).remove(1);
    assert_eq!(decided.signature, expected_signature(&secret, &decided));
    let body = decided.json();
    assert_eq!(body["type"], "approval.decided");
    assert_eq!(body["data"]["status"], "approved");
    assert_eq!(body["data"]["approver"], "alice");

    haltstate(&[
        "pause", "--db", db, "--tenant", "acme", "--agent", "load", "--as", "oncall",
    ]);
    let paused = wait_for(&receiver, 3).remove(2);
    assert_eq!(paused.signature, expected_signature(&secret, &paused));
    let body = paused.json();
    assert_eq!(body["type"], "kill_switch.changed");
    assert_eq!(body["data"]["state"], "PAUSE");
    assert_eq!(body["data"]["agent_id"], "load");
    assert_eq!(body["data"]["url"], "https://hs.example.com/ui/kill");
    let ids: std::collections::HashSet<String> =
        receiver.received().into_iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 3, "three events, three message ids");
}

trait ReplaceFirst {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self.windows(from.len()).position(|w| w == from).unwrap();
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

fn metric(scrape: &str, name: &str, label: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|line| line.starts_with(name) && line.contains(label))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

fn deliveries(db: &Path) -> String {
    String::from_utf8(
        haltstate(&[
            "webhooks",
            "deliveries",
            "--db",
            db.to_str().unwrap(),
            "--tenant",
            "acme",
        ])
        .stdout,
    )
    .unwrap()
}

#[tokio::test]
async fn a_receiver_failing_three_times_gets_the_event_once_more_and_a_restart_loses_nothing() {
    let setup = common::setup(POLICY);
    let receiver = WebhookReceiver::start();
    let secret = add_webhook(&setup.db, &receiver.url(), &[]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_at = format!("127.0.0.1:{port}");
    let args = [
        "--webhook-retry-base",
        "100ms",
        "--metrics-listen",
        &metrics_at,
        "--allow-private-targets",
    ];
    let mut server = common::serve(&setup.db, &setup.policy, &args);
    let db = setup.db.to_str().unwrap();

    receiver.answer_next(&[500, 500, 500]);
    haltstate(&["pause", "--db", db, "--tenant", "acme", "--as", "oncall"]);
    let first = wait_for(&receiver, 4);
    let answered: Vec<u16> = first.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [500, 500, 500, 200]);
    assert!(
        first.iter().all(|r| r.id == first[0].id),
        "one message id for every attempt"
    );
    assert!(
        first
            .iter()
            .all(|r| r.signature == expected_signature(&secret, r))
    );
    eventually("the delivery stored as delivered", WITHIN, || {
        let listed = deliveries(&setup.db);
        listed
            .contains(&format!("{}\t", first[0].id))
            .then_some(())
            .filter(|()| listed.contains("delivered\tattempts=4\tstatus=200"))
    });
    let scrape = reqwest::get(format!("http://{metrics_at}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric(
            &scrape,
            "haltstate_webhook_deliveries_total",
            "outcome=\"retry\""
        ),
        Some(3.0),
        "{scrape}"
    );
    assert_eq!(
        metric(
            &scrape,
            "haltstate_webhook_deliveries_total",
            "outcome=\"delivered\""
        ),
        Some(1.0)
    );

    // An attempt fails, then the server stops before its retry is due.
    receiver.answer_next(&[500]);
    haltstate(&["resume", "--db", db, "--tenant", "acme", "--as", "oncall"]);
    wait_for(&receiver, 5);
    server.signal("TERM");
    assert!(server.wait_exit(WITHIN).is_some_and(|s| s.success()));
    // And an event is queued while no server runs at all.
    haltstate(&["kill", "--db", db, "--tenant", "acme", "--as", "oncall"]);
    let _server = common::serve(&setup.db, &setup.policy, &args);
    let all = eventually("both events delivered after the restart", WITHIN, || {
        let received = receiver.received();
        let delivered: Vec<&Received> =
            received[4..].iter().filter(|r| r.answered == 200).collect();
        (delivered.len() >= 2).then_some(received)
    });
    let states: Vec<String> = all[4..]
        .iter()
        .map(|r| r.json()["data"]["state"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        states.contains(&"RUN".to_owned()) && states.contains(&"KILL".to_owned()),
        "{states:?}"
    );
    // Wait for the outbox to say so, then count: nothing was sent twice once delivered.
    eventually("every delivery stored as delivered", WITHIN, || {
        (deliveries(&setup.db).matches("\tdelivered\t").count() == 3).then_some(())
    });
    let received = receiver.received();
    for id in received
        .iter()
        .map(|r| &r.id)
        .collect::<std::collections::HashSet<_>>()
    {
        let successes = received
            .iter()
            .filter(|r| &r.id == id && r.answered == 200)
            .count();
        assert_eq!(successes, 1, "{id} delivered {successes} times");
    }
    assert_eq!(
        received.iter().filter(|r| r.id == first[0].id).count(),
        4,
        "the first event was not sent again"
    );
}

/// Hostile (issue 21): webhooks are not a port scanner. An address literal on loopback, link-local or a private
/// range is refused when added, however spelt; a webhook that reaches one anyway (added with the override, served
/// without it) is refused when sent, and the receiver hears nothing; `webhooks list` shows no token.
#[tokio::test]
async fn webhooks_never_reach_private_addresses_and_listings_show_no_token() {
    let setup = common::setup(POLICY);
    let db = setup.db.to_str().unwrap();
    for url in [
        "http://127.0.0.1:9/",
        "http://0x7f.1:9/",
        "http://2130706433:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_haltstate"))
            .args([
                "webhooks", "add", "--db", db, "--tenant", "acme", "--url", url, "--as", "oncall",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url} was added");
        assert!(stderr.contains("refused"), "{url}: {stderr}");
    }
    let receiver = WebhookReceiver::start();
    add_webhook(
        &setup.db,
        &format!("{}/T0/B0/tok3n-in-path?token=q5", receiver.url()),
        &[],
    );
    let listed =
        String::from_utf8(haltstate(&["webhooks", "list", "--db", db, "--tenant", "acme"]).stdout)
            .unwrap();
    assert!(
        !listed.contains("tok3n") && !listed.contains("q5"),
        "{listed}"
    );
    assert!(listed.contains("127.0.0.1"), "{listed}");

    // Served without --allow-private-targets: the attempt is refused, nothing is sent.
    let server = common::serve(&setup.db, &setup.policy, &["--webhook-retry-base", "1h"]);
    let pending = guard(server.base_url(), &setup.key, 90_000, "hook:private").await;
    assert_eq!(pending["status"], "pending", "{pending}");
    let deliveries = eventually("the attempt recorded", WITHIN, || {
        let out = haltstate(&["webhooks", "deliveries", "--db", db, "--tenant", "acme"]);
        let text = String::from_utf8(out.stdout).unwrap();
        text.contains("attempts=1").then_some(text)
    });
    assert!(deliveries.contains("loopback"), "{deliveries}");
    assert!(
        receiver.received().is_empty(),
        "a private receiver was posted to"
    );
}

/// The stored secret of the tenant's one webhook, as the database holds it.
fn stored_secret(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT secret FROM webhooks", [], |row| row.get(0))
        .unwrap()
}

fn secrets_key(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let id = String::from_utf8(
        haltstate(&["keys", "secrets", "create", "--out", path.to_str().unwrap()]).stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    (path.to_str().unwrap().to_owned(), id)
}

#[tokio::test]
async fn webhook_secrets_are_sealed_at_rest_rotated_and_useless_without_their_key() {
    let setup = common::setup(POLICY);
    let dir = setup.dir.path();
    let receiver = WebhookReceiver::start();
    // Added before any key: stored as it is, until a server with a key starts.
    let secret = add_webhook(&setup.db, &receiver.url(), &[]);
    assert_eq!(stored_secret(&setup.db), secret);
    let (key, key_id) = secrets_key(dir, "secrets.key");
    assert_eq!(key_id.len(), 8, "{key_id}");
    let again = Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args(["keys", "secrets", "create", "--out", &key])
        .output()
        .unwrap();
    assert!(!again.status.success(), "a key is never overwritten");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let serve_with = |extra: &[&str], db: &Path| {
        let mut args = vec!["--allow-private-targets"];
        args.extend_from_slice(extra);
        common::serve(db, &setup.policy, &args)
    };
    let server = serve_with(&["--secrets-key", &key], &setup.db);
    // Sealed at start, with this key, and the secret's text is nowhere in the database.
    let stored = stored_secret(&setup.db);
    assert!(
        stored.starts_with(&format!("sealed:v1:{key_id}:")),
        "{stored}"
    );
    let raw = std::fs::read(&setup.db).unwrap();
    let needle = &secret.as_bytes()[6..];
    assert!(!raw.windows(needle.len()).any(|w| w == needle));
    // Deliveries are signed with the secret the receiver holds.
    assert_eq!(
        guard(server.base_url(), &setup.key, 90_000, "seal:1").await["status"],
        "pending"
    );
    let first = wait_for(&receiver, 1).remove(0);
    assert_eq!(first.signature, expected_signature(&secret, &first));
    drop(server);

    // The database copied without its key: nothing is sent, and the delivery says why.
    let copy = dir.join("copy.db");
    std::fs::copy(&setup.db, &copy).unwrap();
    let keyless = serve_with(&[], &copy);
    assert_eq!(
        guard(keyless.base_url(), &setup.key, 90_000, "seal:2").await["status"],
        "pending"
    );
    eventually("the delivery to fail for want of the key", WITHIN, || {
        deliveries(&copy).contains("not configured").then_some(())
    });
    assert_eq!(receiver.received().len(), 1, "nothing sent without the key");
    drop(keyless);

    // Rotation: a new key with the old one as previous reseals; then the new key alone signs.
    let (new_key, new_id) = secrets_key(dir, "secrets-2.key");
    let rotating = serve_with(
        &["--secrets-key", &new_key, "--secrets-key-previous", &key],
        &setup.db,
    );
    let stored = stored_secret(&setup.db);
    assert!(
        stored.starts_with(&format!("sealed:v1:{new_id}:")),
        "{stored}"
    );
    drop(rotating);
    let rotated = serve_with(&["--secrets-key", &new_key], &setup.db);
    assert_eq!(
        guard(rotated.base_url(), &setup.key, 90_000, "seal:3").await["status"],
        "pending"
    );
    let received = wait_for(&receiver, 2);
    let last = received.last().unwrap();
    assert_eq!(last.signature, expected_signature(&secret, last));
    drop(rotated);
    // The old key alone no longer opens it: the server refuses to start rather than send nothing.
    let old_only = Command::new(env!("CARGO_BIN_EXE_haltstate"))
        .args(["serve", "--db", setup.db.to_str().unwrap(), "--policy"])
        .arg(&setup.policy)
        .args(["--listen", "127.0.0.1:0", "--secrets-key", &key])
        .output()
        .unwrap();
    assert!(!old_only.status.success());
    let said = String::from_utf8_lossy(&old_only.stderr);
    assert!(
        said.contains(&new_id) && said.contains("not configured"),
        "{said}"
    );
}

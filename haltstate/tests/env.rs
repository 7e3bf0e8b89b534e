//! Configuration from the environment (B24): every variable read, every malformed one named.

#![allow(clippy::unwrap_used)]

use haltstate::{Action, ClientBuilder, GuardError};

fn config_error(vars: &[(&str, &str)]) -> String {
    match ClientBuilder::from_vars(vars.iter().copied()).and_then(ClientBuilder::build) {
        Err(GuardError::Config(message)) => message,
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[test]
fn b24_missing_and_malformed_variables_are_named() {
    // Nothing set: both ways to configure an authority are named (issue 22).
    let nothing = config_error(&[]);
    assert!(
        nothing.contains("HALTSTATE_POLICY") && nothing.contains("embedded authority"),
        "{nothing}"
    );
    assert!(
        nothing.contains("HALTSTATE_API_KEY and HALTSTATE_TENANT_ID"),
        "{nothing}"
    );
    assert_eq!(
        config_error(&[("HALTSTATE_API_KEY", "hs_x")]),
        "HALTSTATE_TENANT_ID is not set"
    );
    assert_eq!(
        config_error(&[
            ("HALTSTATE_BASE_URL", "http://127.0.0.1:9"),
            ("HALTSTATE_TENANT_ID", "acme")
        ]),
        "HALTSTATE_API_KEY is not set"
    );
    assert!(
        config_error(&[("HALTSTATE_TIMEOUT", "soon")]).starts_with("HALTSTATE_TIMEOUT must be")
    );
    assert!(config_error(&[("HALTSTATE_TIMEOUT", "-1")]).starts_with("HALTSTATE_TIMEOUT must be"));
    assert!(
        config_error(&[("HALTSTATE_FAIL_OPEN", "maybe")])
            .starts_with("HALTSTATE_FAIL_OPEN must be")
    );
    let policy = config_error(&[("HALTSTATE_POLICY", "/nonexistent/p.cedar")]);
    assert!(
        policy.contains("HALTSTATE_POLICY=/nonexistent/p.cedar") && policy.contains("cannot read"),
        "{policy}"
    );
    assert!(
        config_error(&[
            ("HALTSTATE_BASE_URL", "ftp://x"),
            ("HALTSTATE_TENANT_ID", "t"),
            ("HALTSTATE_API_KEY", "k")
        ])
        .contains("http://")
    );
}

#[test]
fn b24_an_http_client_builds_from_the_documented_variables() {
    let client = ClientBuilder::from_vars([
        ("HALTSTATE_BASE_URL", "http://127.0.0.1:9/ops/"),
        ("HALTSTATE_TENANT_ID", "acme"),
        ("HALTSTATE_API_KEY", "hs_x"),
        ("HALTSTATE_AGENT_ID", "billing-agent"),
        ("HALTSTATE_TIMEOUT", "2.5"),
        ("HALTSTATE_FAIL_OPEN", "false"),
    ])
    .unwrap()
    .build()
    .unwrap();
    assert_eq!(
        (client.tenant(), client.agent_id()),
        ("acme", "billing-agent")
    );
}

#[tokio::test]
async fn b24_without_a_base_url_the_policy_and_db_give_an_embedded_authority() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.cedar");
    std::fs::write(
        &policy,
        r#"@id("all") permit(principal, action, resource);"#,
    )
    .unwrap();
    let db = dir.path().join("hs.db");
    let client = ClientBuilder::from_vars([
        ("HALTSTATE_POLICY", policy.to_str().unwrap()),
        ("HALTSTATE_DB", db.to_str().unwrap()),
        ("HALTSTATE_TENANT_ID", "acme"),
    ])
    .unwrap()
    .build()
    .unwrap();
    client
        .guard(Action::new("data.export").key("export:1"))
        .await
        .unwrap()
        .complete()
        .await
        .unwrap();
    assert!(db.exists());
}

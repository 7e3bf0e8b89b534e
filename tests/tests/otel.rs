//! OpenTelemetry export (feature `otel`): the `haltstate.guard` span of each guard reaches a real OTLP/HTTP
//! endpoint on loopback, decoded here as a collector decodes it, with its fields as attributes.

#![allow(clippy::unwrap_used)]

use haltstate::authority::Authority;
use haltstate::otel::OtelExport;
use haltstate::{Action, GuardError, HaltStateClient};
use haltstate_testkit::WebhookReceiver;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use tracing_subscriber::layer::SubscriberExt;

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(text) => Some(text.clone()),
            other => Some(format!("{other:?}")),
        })
}

#[test]
fn guard_spans_reach_an_otlp_collector_with_the_decision() {
    let collector = WebhookReceiver::start();
    let export = OtelExport::to(&collector.url_at("/v1/traces"), "otel-test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::builder(dir.path().join("otel.db"))
        .policy_source(
            "p.cedar",
            r#"@id("small") permit(principal, action == Action::"refund.create", resource)
               when { context.params.amount_cents <= 1000 };"#,
        )
        .open()
        .unwrap();
    let client = HaltStateClient::builder()
        .authority(authority)
        .tenant("acme")
        .build()
        .unwrap();
    let subscriber = tracing_subscriber::registry().with(export.layer());
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let refund = |cents: i64, key: &str| {
                Action::new("refund.create")
                    .agent("billing")
                    .key(key)
                    .param("amount_cents", cents)
            };
            let permit = client.guard(refund(500, "otel:small")).await.unwrap();
            permit.complete().await.unwrap();
            let denied = client.guard(refund(50_000, "otel:big")).await;
            assert!(
                matches!(denied, Err(GuardError::ActionDenied { .. })),
                "{denied:?}"
            );
        });
    });
    export.shutdown().unwrap();

    let received = collector.received();
    assert!(!received.is_empty(), "nothing was exported");
    assert!(
        received
            .iter()
            .all(|r| r.content_type == "application/x-protobuf")
    );
    let spans: Vec<Span> = received
        .iter()
        .flat_map(|request| {
            ExportTraceServiceRequest::decode(request.body.as_slice())
                .unwrap()
                .resource_spans
        })
        .inspect(|resource| {
            let service = resource
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref()?.value.clone());
            assert_eq!(service, Some(Value::StringValue("otel-test".into())));
        })
        .flat_map(|resource| resource.scope_spans)
        .flat_map(|scope| scope.spans)
        .filter(|span| span.name == "haltstate.guard")
        .collect();
    let by_key = |key: &str| {
        spans
            .iter()
            .find(|span| attribute(span, "idempotency_key").as_deref() == Some(key))
            .unwrap_or_else(|| panic!("no haltstate.guard span for {key}: {spans:?}"))
    };
    let allowed = by_key("otel:small");
    assert_eq!(
        attribute(allowed, "action").as_deref(),
        Some("refund.create")
    );
    assert_eq!(attribute(allowed, "agent_id").as_deref(), Some("billing"));
    assert_eq!(attribute(allowed, "decision").as_deref(), Some("allowed"));
    assert_eq!(attribute(allowed, "outcome").as_deref(), Some("success"));
    let denied = by_key("otel:big");
    assert_eq!(attribute(denied, "decision").as_deref(), Some("denied"));
    assert!(
        spans
            .iter()
            .all(|span| attribute(span, "amount_cents").is_none()),
        "a param left the process"
    );
}

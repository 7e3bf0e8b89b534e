//! OpenTelemetry export (feature `otel`): every guard is a `haltstate.guard` span (action, agent, idempotency
//! key, then the decision and the body's outcome); [`OtelExport`] sends it, with the app's other spans, to an
//! OpenTelemetry collector over OTLP/HTTP (protobuf), batched on a thread of its own.
//!
//! ```no_run
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! let export = haltstate::otel::OtelExport::to("http://127.0.0.1:4318/v1/traces", "refund-service")?;
//! tracing_subscriber::registry().with(export.layer()).init();
//! // ... guarded calls ...
//! export.shutdown()?; // flushes what is batched
//! # Ok::<(), haltstate::otel::OtelError>(())
//! ```
//!
//! Only what the span carries leaves the process: names, the key, the decision, the outcome; never params.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetryLayer;
use tracing_subscriber::registry::LookupSpan;

/// Why export could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The exporter could not be built (a malformed endpoint, say).
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    /// Flushing or shutting down failed (the collector did not answer, say).
    #[error("OTLP export failed: {0}")]
    Export(String),
}

/// A running export; [`shutdown`](Self::shutdown) flushes what is batched and stops it.
#[derive(Debug)]
pub struct OtelExport {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

impl OtelExport {
    /// Exports to `endpoint`, the collector's traces URL used as given (`http://collector:4318/v1/traces`), as
    /// `service_name`.
    ///
    /// # Errors
    /// [`OtelError::Build`] when the exporter cannot be built.
    pub fn to(endpoint: &str, service_name: &str) -> Result<Self, OtelError> {
        Self::build(Some(endpoint), service_name)
    }

    /// Exports where the standard variables say (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` plus `/v1/traces`; `http://localhost:4318/v1/traces` without either).
    ///
    /// # Errors
    /// [`OtelError::Build`] when the exporter cannot be built.
    pub fn from_env(service_name: &str) -> Result<Self, OtelError> {
        Self::build(None, service_name)
    }

    fn build(endpoint: Option<&str>, service_name: &str) -> Result<Self, OtelError> {
        let builder = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary);
        let builder = match endpoint {
            Some(endpoint) => builder.with_endpoint(endpoint),
            None => builder,
        };
        let exporter = builder
            .build()
            .map_err(|e| OtelError::Build(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("haltstate");
        Ok(Self { provider, tracer })
    }

    /// The `tracing` layer that hands spans to this export; add it to the app's subscriber.
    pub fn layer<S>(&self) -> OpenTelemetryLayer<S, SdkTracer>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone())
    }

    /// Sends what is batched now.
    ///
    /// # Errors
    /// [`OtelError::Export`] when the collector could not be reached.
    pub fn flush(&self) -> Result<(), OtelError> {
        self.provider
            .force_flush()
            .map_err(|e| OtelError::Export(e.to_string()))
    }

    /// Flushes and stops the export.
    ///
    /// # Errors
    /// [`OtelError::Export`] when the last spans could not be sent.
    pub fn shutdown(self) -> Result<(), OtelError> {
        self.provider
            .shutdown()
            .map_err(|e| OtelError::Export(e.to_string()))
    }
}

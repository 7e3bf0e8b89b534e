//! The Prometheus recorder with its histograms drained as they fill, not only at a scrape.
//!
//! The exporter keeps every histogram sample until something drains it into the histogram's buckets: a scrape,
//! or an upkeep its caller runs. With nobody scraping, each guarded action would keep its samples for good
//! (16 bytes each, three per action: gigabytes a day for an agent calling in a loop). Draining after a fixed
//! number of histogram registrations (every `histogram!` records through one) bounds what is kept by the
//! requests themselves, with no timer: memory cannot grow faster than the drains it triggers.

use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};

/// Histogram registrations between two drains: at most this many samples wait per histogram (a few KiB).
const DRAIN_EVERY: u64 = 1024;

/// [`PrometheusRecorder`] draining its histograms every [`DRAIN_EVERY`] histogram registrations.
#[derive(Debug)]
pub(super) struct Drained {
    inner: PrometheusRecorder,
    handle: PrometheusHandle,
    registered: AtomicU64,
}

impl Drained {
    pub(super) fn new(inner: PrometheusRecorder) -> Drained {
        Drained {
            handle: inner.handle(),
            inner,
            registered: AtomicU64::new(0),
        }
    }

    /// The handle a scrape renders with.
    pub(super) fn handle(&self) -> PrometheusHandle {
        self.handle.clone()
    }
}

impl Recorder for Drained {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description);
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description);
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description);
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.inner.register_counter(key, metadata)
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.inner.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        if self.registered.fetch_add(1, Ordering::Relaxed) % DRAIN_EVERY == DRAIN_EVERY - 1 {
            self.handle.run_upkeep();
        }
        self.inner.register_histogram(key, metadata)
    }
}

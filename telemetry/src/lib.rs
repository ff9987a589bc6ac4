//! Telemetry for every protocol, read from the one request hook
//! ([`strait_codec_framework::RequestHook`]) and the framework's request view, and
//! nothing protocol-specific: request metrics ([`Metrics`]) and their exposition in the
//! Prometheus text format and as JSON ([`Exposition`]); access logs ([`access_log`]);
//! trace contexts as callers send them ([`trace_context`]).

#![deny(missing_docs)]

pub mod access_log;
mod exposition;
mod histogram;
mod metrics;
mod otlp_encode;
mod otlp_export;
mod shards;
#[cfg(feature = "skywalking")]
mod skywalking_report;
pub mod trace_context;
pub mod tracer;

pub use exposition::{Exposition, Family, Kind, PROMETHEUS_CONTENT_TYPE, Sample, Value};
pub use histogram::{HistogramSnapshot, LATENCY_BUCKETS};
pub use metrics::{ListenerLayout, ListenerMetrics, Metrics, NO_ROUTE_LABEL, OpenConnection};

//! One scrape's metric families, written either in the Prometheus text format (through
//! `prometheus-client`'s encoder) or as JSON for `/stats`: both come from the same
//! values, so the two never disagree.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::histogram::HistogramSnapshot;

/// What kind of metric a family holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (requests, bytes); exposed with a `_total` suffix.
    Counter,
    /// Goes up and down (open connections, health).
    Gauge,
    /// Latencies in seconds.
    Histogram,
}

/// One value of a family, for one label set.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A count or integer gauge.
    Int(u64),
    /// A latency histogram.
    Histogram(HistogramSnapshot),
}

/// One label set and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Label names and values, in exposition order.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: Value,
}

/// A metric family: a name, its help text and its samples.
#[derive(Debug, Clone)]
pub struct Family {
    /// The name without the `_total` a counter is exposed with.
    pub name: &'static str,
    /// One line saying what it counts.
    pub help: &'static str,
    /// Counter, gauge or histogram.
    pub kind: Kind,
    /// Its values.
    pub samples: Vec<Sample>,
}

impl Family {
    /// An empty family.
    pub fn new(name: &'static str, help: &'static str, kind: Kind) -> Self {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    /// Adds a sample.
    pub fn push(&mut self, labels: &[(&'static str, &str)], value: Value) {
        self.samples.push(Sample {
            labels: labels.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            value,
        });
    }

    /// Adds an integer sample.
    pub fn int(&mut self, labels: &[(&'static str, &str)], value: u64) {
        self.push(labels, Value::Int(value));
    }

    /// The name the family is exposed under (`_total` after a counter's).
    pub fn exposed_name(&self) -> String {
        match self.kind {
            Kind::Counter => format!("{}_total", self.name),
            _ => self.name.to_string(),
        }
    }
}

/// Every family of one scrape.
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

/// The `Content-Type` of [`Exposition::to_prometheus_text`].
pub const PROMETHEUS_CONTENT_TYPE: &str =
    prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

impl Exposition {
    /// Adds a family (families with no samples are left out of the output).
    pub fn add(&mut self, family: Family) {
        self.families.push(family);
    }

    /// The families, in the order they were added.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The Prometheus text format (version 0.0.4).
    pub fn to_prometheus_text(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in the
        // family model (caught by the tests), so an empty scrape is the fallback.
        if prometheus_client::encoding::prometheus_text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }

    /// The same values as JSON: `{ name: [{ labels: {...}, value }] }`, a histogram's
    /// value being `{ count, sum, buckets: [[le, n]...] }`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::Map::new();
        for family in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let samples = family
                .samples
                .iter()
                .map(|sample| {
                    let labels: serde_json::Map<String, serde_json::Value> = sample
                        .labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), serde_json::Value::from(v.as_str())))
                        .collect();
                    let value = match &sample.value {
                        Value::Int(n) => serde_json::Value::from(*n),
                        Value::Histogram(h) => serde_json::json!({
                            "count": h.count,
                            "sum": h.sum,
                            "buckets": h.buckets.iter().map(|(le, n)| {
                                let le = if le.is_finite() { le.to_string() } else { "+Inf".into() };
                                serde_json::json!([le, n])
                            }).collect::<Vec<_>>(),
                        }),
                    };
                    serde_json::json!({ "labels": labels, "value": value })
                })
                .collect();
            out.insert(family.exposed_name(), serde_json::Value::Array(samples));
        }
        serde_json::Value::Object(out)
    }
}

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        for family in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let metric_type = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric =
                encoder.encode_descriptor(family.name, family.help, None, metric_type)?;
            for sample in &family.samples {
                let labels: Vec<(&str, &str)> = sample
                    .labels
                    .iter()
                    .map(|(k, v)| (*k, v.as_str()))
                    .collect();
                let mut one = metric.encode_family(&labels)?;
                match (&sample.value, family.kind) {
                    (Value::Int(n), Kind::Counter) => {
                        one.encode_counter::<NoLabelSet, u64, u64>(n, None)?
                    }
                    (Value::Int(n), _) => one.encode_gauge(&(*n as i64))?,
                    (Value::Histogram(h), _) => {
                        one.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?
                    }
                }
            }
        }
        Ok(())
    }
}

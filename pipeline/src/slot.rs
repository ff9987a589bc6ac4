//! [`ListenerSlot`]: a listener's entry into the pipeline, replaced whole when the
//! configuration is reloaded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use crate::core::ListenerPipeline;

/// Where a listener's connections find its current [`ListenerPipeline`]. A reload
/// stores a new one; each HTTP request takes the one current when it starts, and each
/// framed connection moves to it at its next batch of reads (the requests it routed
/// before end on the old one): nothing in flight changes snapshot.
pub struct ListenerSlot {
    current: ArcSwap<ListenerPipeline>,
    /// Bumped by every replacement: a framed connection compares it once per batch.
    version: AtomicU64,
}

impl ListenerSlot {
    /// A slot holding `pipeline`.
    pub fn new(pipeline: Arc<ListenerPipeline>) -> Arc<Self> {
        Arc::new(ListenerSlot {
            current: ArcSwap::new(pipeline),
            version: AtomicU64::new(0),
        })
    }

    /// Makes `pipeline` the one new requests take.
    pub fn replace(&self, pipeline: Arc<ListenerPipeline>) {
        self.current.store(pipeline);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// The current pipeline.
    pub fn current(&self) -> Arc<ListenerPipeline> {
        self.current.load_full()
    }

    /// The replacement count, and the current pipeline (read after it, so never older).
    pub(crate) fn versioned(&self) -> (u64, Arc<ListenerPipeline>) {
        let version = self.version.load(Ordering::Acquire);
        (version, self.current())
    }

    /// The replacement count.
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }
}

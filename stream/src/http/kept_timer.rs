//! A connection's timer, kept between the waits it bounds.
//!
//! Moving a registered tokio timer to a later deadline is one compare-and-swap; a new
//! timer per wait is an insertion into the runtime's timer wheel and a removal, under
//! its lock. The HTTP/1.1 drivers wait once or twice per request, so they keep one.

use std::pin::Pin;

use tokio::time::{Instant, Sleep};

/// A timer set aside between waits (none until the first wait with a deadline).
#[derive(Default)]
pub(crate) struct KeptTimer(Option<Pin<Box<Sleep>>>);

impl KeptTimer {
    /// The timer, set to fire at `at`, for one wait; give it back with [`Self::keep`].
    pub(crate) fn arm(&mut self, at: Instant) -> Pin<Box<Sleep>> {
        match self.0.take() {
            Some(mut timer) => {
                timer.as_mut().reset(at);
                timer
            }
            None => Box::pin(tokio::time::sleep_until(at)),
        }
    }

    /// Sets a timer taken by [`Self::arm`] aside again (a wait without one keeps the
    /// one already here).
    pub(crate) fn keep(&mut self, timer: Option<Pin<Box<Sleep>>>) {
        if timer.is_some() {
            self.0 = timer;
        }
    }
}

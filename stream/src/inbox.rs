use parking_lot::Mutex;
use strait_codec_framework::{Frame, ProxyFailure, RequestId};

/// The downstream connection's number for a request in flight: its context stays with
/// the connection's task, and the upstream carries only this back.
pub type RequestToken = u32;
use tokio::sync::Notify;

/// How one forwarded request ended.
pub enum Completion {
    /// The upstream answered.
    Response {
        /// The caller's request id, to restore on the response.
        down_id: RequestId,
        /// The upstream's response, its id already set to `down_id`.
        response: Box<dyn Frame>,
        /// The request, in case the response cannot be encoded and the caller must get
        /// an error answer instead.
        request: Box<dyn Frame>,
        /// The downstream connection's token for the request.
        token: RequestToken,
    },
    /// The proxy failed the request (timeout, reset...).
    Failed {
        /// The caller's request id.
        down_id: RequestId,
        /// The request, to build the protocol's error answer from.
        request: Box<dyn Frame>,
        /// What went wrong.
        failure: ProxyFailure,
        /// The downstream connection's token for the request.
        token: RequestToken,
    },
}

/// Where upstream connections drop the completions of one downstream connection's
/// requests. One lock and at most one wake-up per batch, no channel per request.
#[derive(Default)]
pub struct Inbox {
    queue: Mutex<Vec<Completion>>,
    notify: Notify,
}

impl Inbox {
    /// Queues a completion and wakes the downstream connection if it was idle.
    pub fn push(&self, completion: Completion) {
        let was_empty = {
            let mut queue = self.queue.lock();
            queue.push(completion);
            queue.len() == 1
        };
        // The consumer drains everything per wake-up, so only the first push of a
        // batch needs to wake it; Notify keeps the permit if it is not waiting yet.
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Queues several completions under one lock, waking the connection at most once.
    pub fn push_all(&self, completions: impl Iterator<Item = Completion>) {
        let was_empty = {
            let mut queue = self.queue.lock();
            let before = queue.len();
            queue.extend(completions);
            before == 0 && !queue.is_empty()
        };
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// Moves every queued completion into `out`.
    pub fn drain_into(&self, out: &mut Vec<Completion>) {
        std::mem::swap(&mut *self.queue.lock(), out);
    }

    /// Resolves when completions may be queued.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }
}

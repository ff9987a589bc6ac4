//! The upstream request-id allocator ([`super::next_free_id`]) at the edge of Bolt's
//! 32-bit id space: it skips ids still in flight and wraps explicitly to 0 (MOSN
//! truncates a 64-bit counter instead; see conformance-fixtures/CASES.md, P1).

use tokio::time::Instant;

use super::{Shared, State, UpstreamOptions, Waiter, insert, next_free_id, remove};

/// A connection's shared state with no socket behind it: the allocator only reads the
/// protocol's id width and the in-flight map. lenproto has 32-bit ids, as Bolt.
fn shared() -> Shared {
    let peer = ([127, 0, 0, 1], 9).into();
    Shared::new(
        strait_example_lenproto::protocol(),
        peer,
        UpstreamOptions::default(),
        0,
    )
}

/// Takes the next id as `send` does: allocate, then record it in flight.
fn take(shared: &Shared, state: &mut State) -> u64 {
    let id = next_free_id(shared, state).expect("a free id");
    insert(shared, state, id, Waiter::Probe, Instant::now());
    id
}

#[test]
fn wraps_at_u32_max_and_skips_ids_in_flight() {
    const MAX: u64 = u32::MAX as u64;
    let shared = shared();
    let mut guard = shared.state.lock();
    let state = &mut *guard;
    // Ids left in flight from before: one just under the top, and the first two after
    // the wrap.
    for id in [MAX - 1, 0, 1] {
        insert(&shared, state, id, Waiter::Probe, Instant::now());
    }
    state.next_id = MAX - 3;

    let ids: Vec<u64> = (0..4).map(|_| take(&shared, state)).collect();
    assert_eq!(
        ids,
        vec![MAX - 2, MAX, 2, 3],
        "MAX-1, 0 and 1 are in flight and must be skipped; nothing past u32::MAX"
    );

    // Once 0 completes it is free again on the next lap, and never handed out twice
    // while in flight.
    assert!(remove(state, 0).is_some());
    state.next_id = MAX;
    assert_eq!(take(&shared, state), 0);
    assert_eq!(take(&shared, state), 4, "1, 2 and 3 are still in flight");
    let in_flight: std::collections::HashSet<u64> = state.in_flight.ids().collect();
    assert_eq!(
        in_flight.len(),
        state.in_flight.len(),
        "no id recorded twice"
    );
    assert!(in_flight.iter().all(|&id| id <= MAX));
}

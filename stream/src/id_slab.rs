//! In-flight requests indexed by the low bits of their upstream id.
//!
//! Upstream ids are handed out sequentially, so the ids in flight spread evenly over the
//! low bits: a power-of-two table indexed by `id & mask` needs no hashing and no
//! probing, and the id allocator simply skips ids whose slot is taken.

use strait_codec_framework::RequestId;

pub(crate) struct IdSlab<V> {
    slots: Vec<Option<(RequestId, V)>>,
    len: usize,
}

impl<V> IdSlab<V> {
    const INITIAL: usize = 64;

    pub(crate) fn new() -> Self {
        IdSlab {
            slots: (0..Self::INITIAL).map(|_| None).collect(),
            len: 0,
        }
    }

    fn index(&self, id: RequestId) -> usize {
        // The table length is a power of two no larger than the address space.
        (id as usize) & (self.slots.len() - 1)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Whether `id` can be inserted (its slot is empty).
    pub(crate) fn is_free(&self, id: RequestId) -> bool {
        self.slots[self.index(id)].is_none()
    }

    /// Doubles the table when it is half full, so free slots stay easy to find.
    pub(crate) fn reserve_one(&mut self) {
        if (self.len + 1) * 2 <= self.slots.len() {
            return;
        }
        let bigger = self.slots.len() * 2;
        let old = std::mem::replace(&mut self.slots, (0..bigger).map(|_| None).collect());
        // Ids in distinct old slots differ in the old mask bits, so they stay distinct
        // under the wider mask: no collisions while moving.
        for (id, value) in old.into_iter().flatten() {
            let index = self.index(id);
            self.slots[index] = Some((id, value));
        }
    }

    /// Inserts `value` under `id`, whose slot must be free (see [`IdSlab::is_free`]).
    pub(crate) fn insert(&mut self, id: RequestId, value: V) {
        let index = self.index(id);
        debug_assert!(self.slots[index].is_none(), "slot of id {id} is taken");
        if self.slots[index].replace((id, value)).is_none() {
            self.len += 1;
        }
    }

    #[cfg(test)]
    pub(crate) fn get(&self, id: RequestId) -> Option<&V> {
        match &self.slots[self.index(id)] {
            Some((stored, value)) if *stored == id => Some(value),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, id: RequestId) -> Option<V> {
        let index = self.index(id);
        match &self.slots[index] {
            Some((stored, _)) if *stored == id => {
                self.len -= 1;
                self.slots[index].take().map(|(_, v)| v)
            }
            _ => None,
        }
    }

    pub(crate) fn ids(&self) -> impl Iterator<Item = RequestId> + '_ {
        self.slots.iter().flatten().map(|(id, _)| *id)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (RequestId, &V)> + '_ {
        self.slots.iter().flatten().map(|(id, v)| (*id, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove_and_grow() {
        let mut slab = IdSlab::new();
        for id in 0..1000u64 {
            slab.reserve_one();
            assert!(slab.is_free(id));
            slab.insert(id, id * 10);
        }
        assert_eq!(slab.len(), 1000);
        assert!(slab.capacity() >= 2000);
        for id in 0..1000u64 {
            assert_eq!(slab.get(id), Some(&(id * 10)));
        }
        assert_eq!(
            slab.get(5000),
            None,
            "same slot as nothing stored, different id"
        );
        assert_eq!(slab.remove(7), Some(70));
        assert_eq!(slab.remove(7), None);
        assert_eq!(slab.len(), 999);
        assert_eq!(slab.ids().count(), 999);
    }

    #[test]
    fn an_id_with_the_same_low_bits_is_not_confused() {
        let mut slab = IdSlab::new();
        slab.insert(3, "a");
        let alias = 3 + slab.capacity() as u64;
        assert!(!slab.is_free(alias));
        assert_eq!(slab.get(alias), None);
        assert_eq!(slab.remove(alias), None);
        assert_eq!(slab.get(3), Some(&"a"));
    }
}

//! Every connection's next timeout in one indexed min-heap, so the driver
//! sleeps on a single deadline instead of keeping a runtime timer per
//! connection. Each connection's deadline moves on nearly every packet; the
//! heap moves it in place (its slot is known), so once the vectors have
//! grown to the connection count nothing allocates.

use std::time::Instant;

const ABSENT: usize = usize::MAX;

#[derive(Default)]
pub(crate) struct Timers {
    /// `(deadline, key)`, a binary min-heap; ties go to the lower key.
    heap: Vec<(Instant, usize)>,
    /// Each key's index in `heap`, or [`ABSENT`].
    slot: Vec<usize>,
}

impl Timers {
    /// Sets `key`'s deadline, or removes it with `None`.
    pub(crate) fn set(&mut self, key: usize, deadline: Option<Instant>) {
        if self.slot.len() <= key {
            self.slot.resize(key + 1, ABSENT);
        }
        let at = self.slot[key];
        match (at == ABSENT, deadline) {
            (true, None) => {}
            (true, Some(t)) => {
                self.heap.push((t, key));
                self.slot[key] = self.heap.len() - 1;
                self.sift_up(self.heap.len() - 1);
            }
            (false, None) => self.remove_at(at),
            (false, Some(t)) => {
                let earlier = (t, key) < self.heap[at];
                self.heap[at].0 = t;
                if earlier { self.sift_up(at) } else { self.sift_down(at) }
            }
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|(t, _)| *t)
    }

    /// Removes and returns a key whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<usize> {
        match self.heap.first() {
            Some(&(t, key)) if t <= now => {
                self.remove_at(0);
                Some(key)
            }
            _ => None,
        }
    }

    fn remove_at(&mut self, i: usize) {
        let (_, key) = self.heap.swap_remove(i);
        self.slot[key] = ABSENT;
        if i < self.heap.len() {
            self.slot[self.heap[i].1] = i;
            // The entry moved in from the end may belong above or below.
            self.sift_down(i);
            self.sift_up(i);
        }
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[i] >= self.heap[parent] {
                break;
            }
            self.swap(i, parent);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut least = i;
            if l < self.heap.len() && self.heap[l] < self.heap[least] {
                least = l;
            }
            if r < self.heap.len() && self.heap[r] < self.heap[least] {
                least = r;
            }
            if least == i {
                break;
            }
            self.swap(i, least);
            i = least;
        }
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.slot[self.heap[a].1] = a;
        self.slot[self.heap[b].1] = b;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expired_keys_come_out_in_deadline_order_and_moves_leave_nothing_behind() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        timers.set(1, Some(ms(30)));
        timers.set(2, Some(ms(10)));
        timers.set(3, Some(ms(20)));
        // Key 1 moves earlier, key 3 is cancelled.
        timers.set(1, Some(ms(5)));
        timers.set(3, None);
        assert_eq!(timers.len(), 2);
        assert_eq!(timers.next_deadline(), Some(ms(5)));
        assert_eq!(timers.pop_expired(ms(1)), None);
        assert_eq!(timers.pop_expired(ms(15)), Some(1));
        assert_eq!(timers.pop_expired(ms(15)), Some(2));
        assert_eq!(timers.pop_expired(ms(100)), None);
        assert_eq!(timers.next_deadline(), None);
    }

    #[test]
    fn two_keys_may_share_a_deadline() {
        let t = Instant::now();
        let mut timers = Timers::default();
        timers.set(7, Some(t));
        timers.set(8, Some(t));
        let mut got = vec![timers.pop_expired(t).unwrap(), timers.pop_expired(t).unwrap()];
        got.sort();
        assert_eq!(got, vec![7, 8]);
    }

    /// Against a sorted model, through random moves, cancels and pops; and
    /// once the heap has grown to its keys, moving deadlines never grows it.
    #[test]
    fn random_moves_match_a_sorted_model_and_never_grow_the_heap() {
        use std::collections::BTreeSet;
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let mut model: BTreeSet<(Instant, usize)> = BTreeSet::new();
        let mut current: Vec<Option<Instant>> = vec![None; 64];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (key, current) in current.iter_mut().enumerate() {
            let t = t0 + Duration::from_millis(next() % 1000);
            timers.set(key, Some(t));
            model.insert((t, key));
            *current = Some(t);
        }
        let capacity = (timers.heap.capacity(), timers.slot.capacity());
        let mut now = t0;
        for round in 0..20_000 {
            let key = (next() % 64) as usize;
            let new = match next() % 10 {
                0 => None,
                _ => Some(now + Duration::from_millis(next() % 1000)),
            };
            if let Some(t) = current[key] {
                model.remove(&(t, key));
            }
            if let Some(t) = new {
                model.insert((t, key));
            }
            timers.set(key, new);
            current[key] = new;
            if round % 7 == 0 {
                now += Duration::from_millis(next() % 50);
                while let Some(key) = timers.pop_expired(now) {
                    let first = model.pop_first().expect("model has it");
                    assert_eq!(first.1, key);
                    assert!(first.0 <= now);
                    current[key] = None;
                }
                assert!(model.first().is_none_or(|(t, _)| *t > now));
            }
            assert_eq!(timers.len(), model.len());
            assert_eq!(timers.next_deadline(), model.first().map(|(t, _)| *t));
        }
        assert_eq!((timers.heap.capacity(), timers.slot.capacity()), capacity, "no allocation once grown");
    }
}

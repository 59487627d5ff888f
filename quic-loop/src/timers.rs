//! Every connection's next timeout in one ordered set, so the driver sleeps
//! on a single deadline instead of keeping a runtime timer per connection.

use std::collections::BTreeSet;
use std::time::Instant;

#[derive(Default)]
pub(crate) struct Timers {
    set: BTreeSet<(Instant, usize)>,
}

impl Timers {
    /// Moves `key`'s deadline from `old` to `new` (either may be absent).
    pub(crate) fn update(&mut self, key: usize, old: Option<Instant>, new: Option<Instant>) {
        if old == new {
            return;
        }
        if let Some(t) = old {
            self.set.remove(&(t, key));
        }
        if let Some(t) = new {
            self.set.insert((t, key));
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.set.first().map(|(t, _)| *t)
    }

    /// Removes and returns a key whose deadline is at or before `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<usize> {
        match self.set.first() {
            Some(&(t, _)) if t <= now => self.set.pop_first().map(|(_, k)| k),
            _ => None,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.set.len()
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
        timers.update(1, None, Some(ms(30)));
        timers.update(2, None, Some(ms(10)));
        timers.update(3, None, Some(ms(20)));
        // Key 1 moves earlier, key 3 is cancelled.
        timers.update(1, Some(ms(30)), Some(ms(5)));
        timers.update(3, Some(ms(20)), None);
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
        timers.update(7, None, Some(t));
        timers.update(8, None, Some(t));
        let mut got = vec![timers.pop_expired(t).unwrap(), timers.pop_expired(t).unwrap()];
        got.sort();
        assert_eq!(got, vec![7, 8]);
    }
}

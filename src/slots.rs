//! The global and per-host concurrency limits: slots shared by the shards, each freed slot going
//! to a waiter of the shard that holds the fewest (on a tie, to the other shard).
//!
//! Each shard has a connection pool of its own (see `shard`). With one first-come semaphore for
//! both, a slot one shard freed was as often taken by the other, which then found no idle
//! connection in its pool and opened one. Balanced this way, the shards settle at equal numbers
//! and a slot mostly goes back to the shard that freed it, whose next request finds the
//! connection the last one put back: with `-o` (two shards), scenario a made 72-86 connections
//! for `-c 64` instead of 121-182, and scenario e, where each connection is a TLS handshake,
//! 106-131 for its 2000 pages instead of 164-213. No slot is kept back while any shard has a
//! waiter, so when one shard's requests hang the other takes the slots it frees, as with one
//! semaphore; and one slot (`--per-host 1`) takes turns between the shards instead of staying
//! with one while it has waiters. With one shard this is a first-come semaphore.
//!
//! The global limit also keeps each shard's even share free for it until it has taken it or has
//! no more work (`Slots::reserved_evenly`): shard 0 starts on the consumer's thread before the
//! other shards' threads have taken any work, and took every slot, each later moved to the other
//! shard at the price of a new connection there. 2000 URLs of one host at `-c 64`, 8 runs:
//! 86-152 connections without, 64-105 with; over TLS 65-92 without, 64-76 with. A host's limit
//! keeps nothing back: its URLs may come to one shard only.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

pub struct Slots {
    state: Mutex<State>,
}

struct State {
    /// Free slots, `reserved` ones included.
    free: usize,
    /// Free slots kept for each shard until it takes them or leaves.
    reserved: Vec<usize>,
    /// Slots each shard holds.
    held: Vec<usize>,
    /// Each shard's waiters, first come first served.
    waiting: Vec<VecDeque<oneshot::Sender<Slot>>>,
}

/// One slot, given back when dropped.
pub struct Slot {
    /// `None` once the slot has been handed on without being given back.
    slots: Option<Arc<Slots>>,
    shard: usize,
}

impl Slots {
    pub fn new(total: usize, shards: usize) -> Arc<Self> {
        Self::with_reserved(total, vec![0; shards])
    }

    /// Like `new`, with each shard's even share (`total / shards`) kept free for it until it has
    /// taken it or `leave`s.
    pub fn reserved_evenly(total: usize, shards: usize) -> Arc<Self> {
        Self::with_reserved(total, vec![total / shards; shards])
    }

    fn with_reserved(total: usize, reserved: Vec<usize>) -> Arc<Self> {
        let shards = reserved.len();
        Arc::new(Slots {
            state: Mutex::new(State {
                free: total,
                reserved,
                held: vec![0; shards],
                waiting: (0..shards).map(|_| VecDeque::new()).collect(),
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot for `shard`.
    pub async fn acquire(self: &Arc<Self>, shard: usize) -> Slot {
        let handed = {
            let mut state = self.lock();
            if state.reserved[shard] > 0 || state.unreserved() > 0 {
                state.reserved[shard] = state.reserved[shard].saturating_sub(1);
                state.free -= 1;
                state.held[shard] += 1;
                return Slot {
                    slots: Some(Arc::clone(self)),
                    shard,
                };
            }
            let (sender, handed) = oneshot::channel();
            state.waiting[shard].push_back(sender);
            handed
        };
        // A waiter's sender is only dropped by `release` after a handover, so this cannot fail.
        handed.await.expect("a waiting slot is handed over")
    }

    /// `shard` takes no more work: the slots kept for it go to the others' waiters, or are free
    /// for anyone.
    pub fn leave(self: &Arc<Self>, shard: usize) {
        let mut state = self.lock();
        let kept = std::mem::take(&mut state.reserved[shard]);
        for _ in 0..kept {
            state.free -= 1;
            self.hand_on(&mut state, shard);
        }
    }

    /// A slot of `from` is free.
    fn release(self: &Arc<Self>, from: usize) {
        let mut state = self.lock();
        state.held[from] -= 1;
        self.hand_on(&mut state, from);
    }

    /// A slot that `from` no longer holds or keeps: to a waiter of the shard holding the fewest
    /// (`recipient`), or back to the free ones when nobody waits.
    fn hand_on(self: &Arc<Self>, state: &mut State, from: usize) {
        loop {
            let Some(to) = state.recipient(from) else {
                state.free += 1;
                return;
            };
            let sender = state.waiting[to]
                .pop_front()
                .expect("the recipient has a waiter");
            state.held[to] += 1;
            let slot = Slot {
                slots: Some(Arc::clone(self)),
                shard: to,
            };
            match sender.send(slot) {
                Ok(()) => return,
                // The waiter gave up (its fetch was dropped): the next one has it.
                Err(mut slot) => {
                    slot.slots = None;
                    state.held[to] -= 1;
                }
            }
        }
    }
}

impl State {
    /// Free slots that are kept for no shard.
    fn unreserved(&self) -> usize {
        self.free - self.reserved.iter().sum::<usize>()
    }

    /// Of the shards with a waiter, the one that holds the fewest slots; on a tie the other shard,
    /// so that one slot (`--per-host 1`) takes turns rather than stay with one shard.
    fn recipient(&self, from: usize) -> Option<usize> {
        (0..self.waiting.len())
            .filter(|&shard| !self.waiting[shard].is_empty())
            .min_by_key(|&shard| (self.held[shard], shard == from))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.take() {
            slots.release(self.shard);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    /// A slot for each of `shards`, in turn.
    async fn hold(slots: &Arc<Slots>, shards: &[usize]) -> Vec<Slot> {
        let mut held = Vec::new();
        for &shard in shards {
            held.push(slots.acquire(shard).await);
        }
        held
    }

    #[tokio::test]
    async fn a_freed_slot_stays_in_its_shard_while_it_holds_no_more_than_the_other() {
        let slots = Slots::new(4, 2);
        let mut first = hold(&slots, &[0, 0, 1, 1]).await;
        let mut in_0 = std::pin::pin!(slots.acquire(0));
        let mut in_1 = std::pin::pin!(slots.acquire(1));
        assert!((&mut in_0).now_or_never().is_none());
        assert!((&mut in_1).now_or_never().is_none());
        drop(first.remove(2)); // one of shard 1's
        assert!(
            (&mut in_0).now_or_never().is_none(),
            "shard 0 already holds more"
        );
        assert!((&mut in_1).now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_shard_holding_more_gives_its_freed_slots_to_the_other() {
        let slots = Slots::new(4, 2);
        // Shard 0 came first and took every slot.
        let mut held = hold(&slots, &[0; 4]).await;
        let mut in_0 = std::pin::pin!(slots.acquire(0));
        let mut in_1 = std::pin::pin!(slots.acquire(1));
        assert!((&mut in_0).now_or_never().is_none());
        assert!((&mut in_1).now_or_never().is_none());
        drop(held.pop());
        let taken = (&mut in_1).now_or_never();
        assert!(taken.is_some(), "shard 1 holds fewer");
        assert!((&mut in_0).now_or_never().is_none());
    }

    #[tokio::test]
    async fn a_slot_goes_to_the_other_shard_when_its_own_has_no_waiter() {
        let slots = Slots::new(2, 2);
        let a = slots.acquire(0).await;
        let _b = slots.acquire(0).await;
        let mut in_1 = std::pin::pin!(slots.acquire(1));
        assert!((&mut in_1).now_or_never().is_none());
        drop(a);
        assert!((&mut in_1).now_or_never().is_some());
    }

    #[tokio::test]
    async fn a_shard_finds_its_share_kept_however_late_it_comes() {
        let slots = Slots::reserved_evenly(5, 2);
        let _first = hold(&slots, &[0; 3]).await;
        let mut fourth = std::pin::pin!(slots.acquire(0));
        assert!(
            (&mut fourth).now_or_never().is_none(),
            "shard 1's two are kept"
        );
        drop(hold(&slots, &[1, 1]).await);
        assert!(
            (&mut fourth).now_or_never().is_some(),
            "once taken, shard 1's share is anyone's"
        );
    }

    #[tokio::test]
    async fn a_shard_that_leaves_gives_its_kept_share_to_the_others() {
        let slots = Slots::reserved_evenly(4, 2);
        let _first = hold(&slots, &[0, 0]).await;
        let mut third = std::pin::pin!(slots.acquire(0));
        assert!((&mut third).now_or_never().is_none());
        slots.leave(1);
        assert!(
            (&mut third).now_or_never().is_some(),
            "handed to the waiter"
        );
        assert!(slots.acquire(0).now_or_never().is_some(), "and free");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_take_a_slot_with_it() {
        let slots = Slots::new(1, 2);
        let only = slots.acquire(0).await;
        let mut gone = Box::pin(slots.acquire(1));
        assert!((&mut gone).now_or_never().is_none());
        let mut next = std::pin::pin!(slots.acquire(1));
        assert!((&mut next).now_or_never().is_none());
        drop(gone);
        drop(only);
        let taken = (&mut next).now_or_never();
        assert!(taken.is_some());
        assert!(slots.acquire(0).now_or_never().is_none(), "one slot, taken");
        drop(taken);
        assert!(
            slots.acquire(0).now_or_never().is_some(),
            "the slot is back"
        );
    }

    #[tokio::test]
    async fn a_slot_handed_to_a_waiter_that_then_gives_up_comes_back() {
        let slots = Slots::new(1, 1);
        let only = slots.acquire(0).await;
        let waiter = slots.acquire(0);
        let mut waiter = Box::pin(waiter);
        assert!((&mut waiter).now_or_never().is_none());
        drop(only); // handed to the waiter, which is dropped before it looks
        drop(waiter);
        assert!(slots.acquire(0).now_or_never().is_some());
    }
}

//! Admission to the instance pool: a call takes one of a fixed number of
//! slots, or waits in a bounded queue with a deadline, or is refused as busy.

use super::CallError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What a refused caller is told to wait before retrying, in seconds.
const RETRY_AFTER_SECONDS: u64 = 1;

pub(super) struct Admission {
    /// One permit per pool slot. Tokio's semaphore is fair: permits go to
    /// waiters in arrival order, so a late caller cannot overtake the queue.
    slots: Arc<Semaphore>,
    /// Background calls (post hooks, delivery results) that may wait for or
    /// hold a slot at once: half the slots, at least one. They wait without
    /// a deadline and take no place in the queue, and a burst of them (500
    /// posts' hooks) stands before requests in the slots' queue at most this
    /// many deep, so requests keep the other half.
    background: Arc<Semaphore>,
    waiting: AtomicU32,
    queue_size: u32,
    queue_timeout: Duration,
}

impl Admission {
    pub(super) fn new(slots: u32, queue_size: u32, queue_timeout: Duration) -> Admission {
        Admission {
            slots: Arc::new(Semaphore::new(slots as usize)),
            background: Arc::new(Semaphore::new((slots as usize / 2).max(1))),
            waiting: AtomicU32::new(0),
            queue_size,
            queue_timeout,
        }
    }

    /// A slot, held until the permit is dropped.
    pub(super) async fn admit(&self) -> Result<OwnedSemaphorePermit, CallError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let busy = CallError::Busy {
            retry_after: RETRY_AFTER_SECONDS,
        };
        // Take a place in the queue, or leave at once when it is full.
        let placed = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.queue_size).then_some(n + 1)
            });
        if placed.is_err() {
            return Err(busy);
        }
        let _place = Place(&self.waiting);
        match tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out, or the semaphore closed (it never is).
            _ => Err(busy),
        }
    }

    /// A slot for work owed in the background, however long it takes:
    /// refusing it would only lose it or move it elsewhere to be retried.
    /// Held until the returned permits are dropped.
    pub(super) async fn admit_background(&self) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
        // Neither semaphore is ever closed.
        let share = self
            .background
            .clone()
            .acquire_owned()
            .await
            .expect("the background semaphore is never closed");
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .expect("the slots' semaphore is never closed");
        (slot, share)
    }

    /// Whether a request's call would be admitted now: a slot is free, or
    /// the queue has room.
    pub(super) fn has_room(&self) -> bool {
        self.slots.available_permits() > 0 || self.waiting.load(Ordering::Acquire) < self.queue_size
    }

    #[cfg(test)]
    fn waiting(&self) -> u32 {
        self.waiting.load(Ordering::Acquire)
    }
}

/// A place in the queue, given up however the wait ends (even if the
/// waiting future is dropped by a disconnecting client).
struct Place<'a>(&'a AtomicU32);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_queues_then_refuses() {
        let admission = Arc::new(Admission::new(1, 1, Duration::from_secs(30)));
        assert!(admission.has_room());
        let held = admission.admit().await.unwrap();
        assert!(admission.has_room(), "the queue has a place");
        // The second caller waits in the queue ...
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(drop) }
        });
        while admission.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // ... and a third finds the queue full.
        assert!(!admission.has_room());
        assert!(matches!(
            admission.admit().await,
            Err(CallError::Busy { retry_after: 1 })
        ));
        drop(held);
        assert!(queued.await.unwrap().is_ok());
        assert_eq!(admission.waiting(), 0);
    }

    #[tokio::test]
    async fn background_calls_wait_past_the_deadline_and_leave_requests_half_the_slots() {
        let admission = Arc::new(Admission::new(2, 0, Duration::from_millis(10)));
        let first = admission.admit_background().await;
        // A second background call waits for the share, however long.
        let second = tokio::spawn({
            let admission = admission.clone();
            async move { drop(admission.admit_background().await) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!second.is_finished(), "it waits, past the queue deadline");
        // The other slot is a request's, and a request with no place in the
        // queue (size 0) is refused at once, as before.
        let request = admission.admit().await.unwrap();
        assert!(matches!(
            admission.admit().await,
            Err(CallError::Busy { .. })
        ));
        drop(first);
        second.await.unwrap();
        drop(request);
        assert_eq!(admission.waiting(), 0);
    }

    #[tokio::test]
    async fn a_wait_past_its_deadline_is_refused_and_leaves_the_queue() {
        let admission = Admission::new(1, 4, Duration::from_millis(50));
        let _held = admission.admit().await.unwrap();
        assert!(matches!(
            admission.admit().await,
            Err(CallError::Busy { .. })
        ));
        assert_eq!(admission.waiting(), 0);
    }
}

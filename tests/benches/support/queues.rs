//! The bounded queues the benchmarks compare — foreman's `Queue`, crossbeam-queue's
//! `ArrayQueue`, heapless's `mpmc::Queue` and concurrent-queue's `bounded` — behind one
//! trait, shared by the queue suite (`peers`) and the instruction counts (`instructions`).

use concurrent_queue::ConcurrentQueue;
use crossbeam_queue::ArrayQueue;

/// The operations the benchmark needs, over each queue's own API.
pub trait Bounded: Sync {
    fn push(&self, value: u64) -> Result<(), u64>;
    fn pop(&self) -> Option<u64>;
}

impl<const N: usize> Bounded for foreman_rt::queue::Queue<u64, N> {
    #[inline]
    fn push(&self, value: u64) -> Result<(), u64> {
        self.try_push(value)
            .map_err(foreman_rt::queue::PushError::into_inner)
    }
    #[inline]
    fn pop(&self) -> Option<u64> {
        self.try_pop().ok()
    }
}

impl Bounded for ArrayQueue<u64> {
    #[inline]
    fn push(&self, value: u64) -> Result<(), u64> {
        ArrayQueue::push(self, value)
    }
    #[inline]
    fn pop(&self) -> Option<u64> {
        ArrayQueue::pop(self)
    }
}

impl<const N: usize> Bounded for heapless::mpmc::Queue<u64, N> {
    #[inline]
    fn push(&self, value: u64) -> Result<(), u64> {
        self.enqueue(value)
    }
    #[inline]
    fn pop(&self) -> Option<u64> {
        self.dequeue()
    }
}

impl Bounded for ConcurrentQueue<u64> {
    #[inline]
    fn push(&self, value: u64) -> Result<(), u64> {
        ConcurrentQueue::push(self, value).map_err(concurrent_queue::PushError::into_inner)
    }
    #[inline]
    fn pop(&self) -> Option<u64> {
        ConcurrentQueue::pop(self).ok()
    }
}

/// The queues, by the names the records use.
pub const NAMES: [&str; 4] = ["foreman", "crossbeam-queue", "heapless", "concurrent-queue"];

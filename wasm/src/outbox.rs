//! [`Outbox`]: how worker threads (and the clock thread) report to the page's thread.
//!
//! Workers push what happened (a task's outcome, a hang) onto a lock-free list; the page's
//! thread takes everything at once, in the order it was pushed. The page's thread never
//! blocks, and it must not poll either (a hidden tab's timers are throttled to once a second
//! or less), so the list also says when the page must be *woken*: the page arms the outbox
//! before it goes idle, and the first push after that tells its pusher to post the page a
//! message (see [`crate::entry`]). One message per burst, not per outcome.
//!
//! A pusher that won the wake-up may also *owe* it ([`Outbox::owe`]) instead of sending it:
//! while the workers are busy, the pool lets the clock thread send it at its next tick
//! ([`Outbox::take_owed`]), so that a stream of outcomes wakes the page about once per clock
//! period rather than once per outcome (every wake-up is a task on the page's thread, which
//! competes with the workers for the cores).
//!
//! A push is one compare-and-swap: a thread killed in the middle of one either pushed its
//! message or did not; nothing is left half-done for the page to trip over.

use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

struct Node<M> {
    next: *mut Node<M>,
    message: M,
}

/// A multi-producer list of messages for the page's thread. See the [module docs](self).
pub(crate) struct Outbox<M> {
    head: AtomicPtr<Node<M>>,
    /// Set by the page when it has taken everything and will wait for a wake-up.
    armed: AtomicBool,
    /// A pusher won the wake-up and left it for a later [`take_owed`](Self::take_owed).
    owed: AtomicBool,
}

// SAFETY: messages move from the pushing thread to the taking thread (so `M: Send`); the
// list itself is only reached through atomics.
unsafe impl<M: Send> Sync for Outbox<M> {}
// SAFETY: as above.
unsafe impl<M: Send> Send for Outbox<M> {}

/// Whether the pusher must wake the page.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The page was armed: post it a message.
    Page,
    /// The page will see the message without one.
    No,
}

impl<M> Outbox<M> {
    /// An empty outbox; the page is armed (nothing to take yet).
    pub(crate) fn new() -> Self {
        Outbox {
            head: AtomicPtr::new(ptr::null_mut()),
            armed: AtomicBool::new(true),
            owed: AtomicBool::new(false),
        }
    }

    /// Pushes a message. Returns whether the caller must wake the page.
    pub(crate) fn push(&self, message: M) -> Wake {
        let node = Box::into_raw(Box::new(Node {
            next: ptr::null_mut(),
            message,
        }));
        // Relaxed: a first guess for the CAS loop.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: the node is ours until the CAS below publishes it.
            unsafe { (*node).next = head };
            // SeqCst: Release publishes the node; and the load of `armed` below must not be
            // ordered before this push (Dekker with `arm`).
            match self
                .head
                .compare_exchange_weak(head, node, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        // SeqCst: see above. Only one pusher wins the wake-up.
        if self.armed.swap(false, Ordering::SeqCst) {
            Wake::Page
        } else {
            Wake::No
        }
    }

    /// Leaves the wake-up a [`push`](Self::push) returned ([`Wake::Page`]) for whoever next
    /// calls [`take_owed`](Self::take_owed): that caller must wake the page.
    pub(crate) fn owe(&self) {
        // Release: orders the push before the flag; whoever takes it wakes the page, which
        // takes the messages with Acquire anyway.
        self.owed.store(true, Ordering::Release);
    }

    /// Takes a wake-up left by [`owe`](Self::owe): `true` if there was one, and the caller
    /// must now wake the page. (A wake-up owed while the page took the messages for another
    /// reason only wakes it once more for nothing, which is harmless.)
    pub(crate) fn take_owed(&self) -> bool {
        // Relaxed load: a cheap look first (most calls find nothing); AcqRel swap: only one
        // taker wins.
        self.owed.load(Ordering::Relaxed) && self.owed.swap(false, Ordering::AcqRel)
    }

    /// Takes every message pushed so far, oldest first (page's thread).
    pub(crate) fn take(&self) -> Vec<M> {
        // Acquire: see the nodes' contents (pairs with the push's Release).
        let mut node = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        let mut messages = Vec::new();
        while !node.is_null() {
            // SAFETY: every node was made by `Box::into_raw` in `push`, published once, and
            // taken once (the swap above took the whole list).
            let boxed = unsafe { Box::from_raw(node) };
            node = boxed.next;
            messages.push(boxed.message);
        }
        messages.reverse();
        messages
    }

    /// Arms the outbox before the page goes idle: the next push wakes it. Returns `false` if
    /// a message arrived meanwhile (take it, then arm again).
    pub(crate) fn arm(&self) -> bool {
        // SeqCst: Dekker with `push`: either the pusher sees the flag, or this load sees its
        // node.
        self.armed.store(true, Ordering::SeqCst);
        if self.head.load(Ordering::SeqCst).is_null() {
            return true;
        }
        // A message slipped in: take the wake-up back (a pusher may have taken it first; then
        // a wake-up message is on its way, which is harmless).
        self.armed.store(false, Ordering::SeqCst);
        false
    }
}

impl<M> Drop for Outbox<M> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn messages_come_out_in_order_and_wake_once_per_arming() {
        let outbox = Outbox::new();
        assert_eq!(outbox.push(String::from("a")), Wake::Page);
        assert_eq!(outbox.push(String::from("b")), Wake::No);
        assert!(!outbox.arm(), "not empty: take first");
        assert_eq!(outbox.take(), ["a", "b"]);
        assert!(outbox.take().is_empty());
        assert!(outbox.arm());
        assert_eq!(outbox.push(String::from("c")), Wake::Page);
        assert_eq!(outbox.push(String::from("d")), Wake::No);
        assert_eq!(outbox.take(), ["c", "d"]);
    }

    #[wasm_bindgen_test]
    fn an_owed_wake_up_is_taken_once_and_later_pushes_do_not_wake() {
        let outbox = Outbox::new();
        assert!(!outbox.take_owed(), "nothing owed yet");
        assert_eq!(outbox.push(1), Wake::Page);
        outbox.owe();
        // The page has not been woken: later pushes still must not wake it on their own.
        assert_eq!(outbox.push(2), Wake::No);
        assert!(outbox.take_owed(), "the owed wake-up is there");
        assert!(!outbox.take_owed(), "and taken once");
        assert_eq!(outbox.take(), [1, 2]);
        assert!(outbox.arm());
        assert_eq!(
            outbox.push(3),
            Wake::Page,
            "armed again: the next push wakes"
        );
    }

    #[wasm_bindgen_test]
    fn dropping_an_outbox_drops_its_messages() {
        let counted = std::rc::Rc::new(());
        let outbox = Outbox::new();
        for _ in 0..3 {
            let _ = outbox.push(std::rc::Rc::clone(&counted));
        }
        drop(outbox);
        assert_eq!(std::rc::Rc::strong_count(&counted), 1);
    }
}

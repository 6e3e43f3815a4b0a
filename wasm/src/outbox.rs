//! [`Outbox`]: how worker threads (and the clock thread) report to the page's thread.
//!
//! Workers push what happened (a task's outcome, a hang) onto a lock-free list; the page's
//! thread takes everything at once, in the order it was pushed. The page's thread never
//! blocks, and it must not poll either (a hidden tab's timers are throttled to once a second
//! or less), so the list also says when the page must be *woken*: the page arms the outbox
//! before it goes idle, and the first push after that tells its pusher to post the page a
//! message (see [`crate::entry`]). One message per burst, not per outcome.
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

//! Panic messages of worker threads.
//!
//! A panic aborts (`panic = "abort"`, wasm32's default): the worker's thread traps and the
//! message would be lost with it. A panic hook, installed by the first [`Pool`](crate::Pool)
//! and chained in front of whatever hook was there before, formats the message of a panic on a
//! worker thread straight into a buffer of the worker's heap slot (no allocation: the panic may
//! have happened inside the allocator), where the page reads it once the thread is gone.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Once;

use crate::heap::{self, HeapId, MAX_WORKER_HEAPS};

/// Room for one panic message per worker heap.
const MESSAGE: usize = 240;

static MESSAGES: [Message<MESSAGE>; MAX_WORKER_HEAPS] =
    [const { Message::new() }; MAX_WORKER_HEAPS];

/// Installs the hook (once per module), in front of the hook that was installed before: set
/// your own hook before you start the first pool, or chain to the previous one.
pub(crate) fn install_hook() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if let Some(id) = heap::current() {
                let payload = info.payload_as_str().unwrap_or("a panic without a message");
                match info.location() {
                    Some(at) => record(id, format_args!("{payload} ({}:{})", at.file(), at.line())),
                    None => record(id, format_args!("{payload}")),
                }
            }
            previous(info);
        }));
    });
}

/// A panic message, written by the dying worker's panic hook, read by the page.
struct Message<const N: usize> {
    /// Bytes written, 0 when empty.
    len: AtomicU32,
    bytes: [AtomicU8; N],
}

impl<const N: usize> Message<N> {
    const fn new() -> Self {
        Message {
            len: AtomicU32::new(0),
            bytes: [const { AtomicU8::new(0) }; N],
        }
    }

    /// Writes a new message, truncated to `N` bytes on a character boundary.
    fn write(&self, message: core::fmt::Arguments<'_>) {
        let mut writer = Writer {
            bytes: &self.bytes,
            written: 0,
        };
        // Writing into the buffer cannot fail; a `Display` that fails leaves what it wrote.
        let _ = writer.write_fmt(message);
        // Release: the bytes before the length.
        self.len.store(writer.written as u32, Ordering::Release);
    }

    /// Takes the message, if there is one.
    fn take(&self) -> Option<String> {
        // Acquire: pairs with `write`.
        let len = self.len.swap(0, Ordering::Acquire) as usize;
        if len == 0 {
            return None;
        }
        let bytes: Vec<u8> = self.bytes[..len]
            .iter()
            // Relaxed: ordered by the Acquire above.
            .map(|cell| cell.load(Ordering::Relaxed))
            .collect();
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// Formats a message straight into a [`Message`]'s buffer.
struct Writer<'a> {
    bytes: &'a [AtomicU8],
    written: usize,
}

impl core::fmt::Write for Writer<'_> {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        let mut end = text.len().min(self.bytes.len() - self.written);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        for (cell, byte) in self.bytes[self.written..]
            .iter()
            .zip(&text.as_bytes()[..end])
        {
            // Relaxed: published by the Release store of the length.
            cell.store(*byte, Ordering::Relaxed);
        }
        self.written += end;
        Ok(())
    }
}

/// Keeps the panic message of the worker thread on heap `id`.
fn record(id: HeapId, message: core::fmt::Arguments<'_>) {
    MESSAGES[id.index()].write(message);
}

/// Takes the panic message the worker thread on heap `id` left, if any.
pub(crate) fn take(id: HeapId) -> Option<String> {
    MESSAGES[id.index()].take()
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn messages_keep_whole_characters() {
        let message = Message::<5>::new();
        message.write(format_args!("ab€cd"));
        assert_eq!(message.take().as_deref(), Some("ab€"));
        assert_eq!(message.take(), None, "taken once");
        message.write(format_args!("{}", "é".repeat(200)));
        let long = Message::<MESSAGE>::new();
        long.write(format_args!("{}", "é".repeat(200)));
        let text = long.take().unwrap();
        assert!(text.len() <= MESSAGE && text.len() > MESSAGE - 2);
        assert!(text.chars().all(|c| c == 'é'));
    }
}

//! Helpers shared by the cross-crate tests in `tests/tests/`.

use std::sync::atomic::{AtomicU64, Ordering};

/// One bit per task id: records each id seen and tells whether it was seen before, so a test
/// can prove every task ended exactly once (none lost, none duplicated).
pub struct Bitmap {
    words: Vec<AtomicU64>,
    len: usize,
}

impl Bitmap {
    /// A bitmap for ids `0..len`, all clear.
    pub fn new(len: usize) -> Bitmap {
        Bitmap {
            words: (0..len.div_ceil(64)).map(|_| AtomicU64::new(0)).collect(),
            len,
        }
    }

    /// Sets bit `id`; returns `false` if it was already set (a duplicate).
    pub fn set(&self, id: usize) -> bool {
        assert!(id < self.len, "id {id} out of range 0..{}", self.len);
        let bit = 1u64 << (id % 64);
        self.words[id / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Whether bit `id` is set.
    pub fn get(&self, id: usize) -> bool {
        self.words[id / 64].load(Ordering::Relaxed) & (1u64 << (id % 64)) != 0
    }

    /// The ids whose bit is clear.
    pub fn missing(&self) -> Vec<usize> {
        (0..self.len).filter(|&id| !self.get(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_duplicates_and_missing_ids() {
        let bitmap = Bitmap::new(130);
        assert!(bitmap.set(0));
        assert!(bitmap.set(129));
        assert!(!bitmap.set(129));
        assert_eq!(bitmap.missing().len(), 128);
        assert!(bitmap.get(0) && !bitmap.get(1));
    }
}

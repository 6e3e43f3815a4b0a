//! [`Portable`]: the bound on what crosses between the parent and its worker processes.

/// Plain data that means the same in every process running this binary: the bound on a
/// process pool's tasks, outputs and errors.
///
/// Values cross between processes as bytes copied through shared memory, so a `Portable` type
/// holds no pointer and no reference of any kind — not `&'static str`, not `Box`, `String` or
/// `Vec`, not `fn` pointers (the binary is loaded at a different address in each process) —
/// and no handle whose meaning is per process (a file descriptor number, say). Integers,
/// floats, `bool`, `char`, arrays, tuples, `Option` and `Result` of portable types are
/// portable; so is a struct or enum of them, once you say so:
///
/// ```
/// use foreman_rt::host::processes::Portable;
///
/// #[derive(Debug, Clone, Copy, PartialEq)]
/// enum Shape {
///     Circle { radius: f64 },
///     Square { side: f64 },
/// }
///
/// // SAFETY: `Shape` holds only `f64`s: no pointer, no reference, no handle.
/// unsafe impl Portable for Shape {}
/// ```
///
/// Text goes as a fixed-size byte array (`[u8; 64]` and a length, say). A reference does not
/// compile:
///
/// ```compile_fail
/// use foreman_rt::host::processes::Handler;
/// static ECHO: Handler<&'static str, (), ()> = Handler::new("echo", |_, _| Ok(()));
/// ```
///
/// # Safety
///
/// Implement it only for `Copy` types whose every field is portable by the rule above. A
/// pointer copied into another process points into that process's memory: reading through it
/// there is undefined behaviour.
///
/// The parent reads each answer (a `Result<R, E>`) from its worker's mailbox as a value, not
/// checked: it trusts the worker process's memory that far. Task code that writes where it
/// must not (unsafe code, FFI) and lands in its own mailbox may hand the parent bytes that
/// are no valid value of the type (a `bool` of 2, a surrogate `char`, an enum tag out of
/// range): undefined behaviour in the parent. Only types for which every bit pattern is
/// valid (integers, floats, arrays and `repr(C)` structs of them) are immune; pick those for
/// `R` and `E` where task code runs unsafe code you do not trust.
pub unsafe trait Portable: Copy + Send + 'static {}

macro_rules! portable {
    ($($t:ty),* $(,)?) => { $(
        // SAFETY: a primitive without pointers: its bytes mean the same in every process.
        unsafe impl Portable for $t {}
    )* };
}

portable!(
    (),
    bool,
    char,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    f32,
    f64,
    core::num::NonZeroU8,
    core::num::NonZeroU16,
    core::num::NonZeroU32,
    core::num::NonZeroU64,
    core::num::NonZeroU128,
    core::num::NonZeroUsize,
    core::num::NonZeroI8,
    core::num::NonZeroI16,
    core::num::NonZeroI32,
    core::num::NonZeroI64,
    core::num::NonZeroI128,
    core::num::NonZeroIsize,
    core::time::Duration,
    core::cmp::Ordering,
);

// SAFETY: an array of portable values is those values side by side.
unsafe impl<T: Portable, const N: usize> Portable for [T; N] {}
// SAFETY: `None` or a portable value; the discriminant is plain data.
unsafe impl<T: Portable> Portable for Option<T> {}
// SAFETY: one of two portable values; the discriminant is plain data.
unsafe impl<T: Portable, E: Portable> Portable for Result<T, E> {}
// SAFETY: a portable value.
unsafe impl<T: Portable> Portable for core::num::Wrapping<T> {}

macro_rules! portable_tuples {
    ($(($($t:ident),+)),* $(,)?) => { $(
        // SAFETY: portable values side by side.
        unsafe impl<$($t: Portable),+> Portable for ($($t,)+) {}
    )* };
}

portable_tuples!(
    (A),
    (A, B),
    (A, B, C),
    (A, B, C, D),
    (A, B, C, D, F),
    (A, B, C, D, F, G),
    (A, B, C, D, F, G, H),
    (A, B, C, D, F, G, H, I),
);

#[cfg(test)]
mod tests {
    use super::Portable;

    fn portable<T: Portable>() {}

    #[test]
    fn composites_of_portable_types_are_portable() {
        portable::<(u32, [u8; 16], Option<Result<f64, char>>)>();
        portable::<core::num::Wrapping<i64>>();
    }
}

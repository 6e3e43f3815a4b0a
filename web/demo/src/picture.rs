//! The workload: rows of the Mandelbrot set, drawn into one shared picture.
//!
//! A row is a CPU-bound task with a visible result. The live demo zooms into the seahorse
//! valley: the `n`-th row task draws row `n % HEIGHT` of view `(n / HEIGHT) % VIEWS` (see
//! [`next_row`]), so the picture dives a little deeper with every `HEIGHT` row tasks. The
//! benchmark draws every row of one fixed view, with foreman's workers and with rayon's,
//! through the same [`render_row`].

use core::sync::atomic::{AtomicU32, Ordering};

/// Row tasks handed out so far (see [`next_row`]).
static ROWS_HANDED_OUT: AtomicU32 = AtomicU32::new(0);

/// Picture width in pixels.
pub const WIDTH: usize = 640;
/// Picture height in pixels: one task per row.
pub const HEIGHT: usize = 400;
/// Zoom steps of the live demo before it starts over.
pub const VIEWS: u16 = 24;
/// The view the benchmark draws: deep enough that a row is real work.
pub const BENCH_VIEW: u16 = 16;

/// The picture, RGBA bytes in little-endian `u32`s (`0xAABBGGRR`), written by whichever
/// thread renders a row and read by the page's main thread.
static PICTURE: [AtomicU32; WIDTH * HEIGHT] = [const { AtomicU32::new(0) }; WIDTH * HEIGHT];
/// Rows drawn into the picture so far (wrapping): the page redraws only when it moved.
static DRAWN: AtomicU32 = AtomicU32::new(0);

/// A window onto the complex plane.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// Real part of the centre.
    pub center_re: f64,
    /// Imaginary part of the centre.
    pub center_im: f64,
    /// Width of the window.
    pub width: f64,
    /// Iterations before a point counts as inside the set.
    pub max_iter: u32,
}

/// View `index` of the zoom (taken modulo [`VIEWS`]): a dive into the seahorse valley, each
/// step 30 % narrower and iterating 60 times more.
pub fn view(index: u16) -> View {
    let step = index % VIEWS;
    View {
        center_re: -0.743_643_887_037_151,
        center_im: 0.131_825_904_205_330,
        width: 0.06 * 0.7f64.powi(i32::from(step)),
        max_iter: 300 + 60 * u32::from(step),
    }
}

/// The view and row the next row task of the live demo draws: `(view, row)`.
pub fn next_row() -> (u16, u16) {
    // Relaxed: only a sequence number.
    row_of(ROWS_HANDED_OUT.fetch_add(1, Ordering::Relaxed))
}

/// The view and row the `n`-th row task draws: `(view, row)`.
fn row_of(n: u32) -> (u16, u16) {
    let height = HEIGHT as u32;
    (
        ((n / height) % u32::from(VIEWS)) as u16,
        (n % height) as u16,
    )
}

/// Renders row `row` of `view` into `out`, each pixel the average of 2 × 2 samples.
/// Deterministic: the same row always gives the same pixels, whoever renders it.
pub fn render_row(view: &View, row: usize, out: &mut [u32; WIDTH]) {
    let step = view.width / WIDTH as f64;
    let top = view.center_im + step * HEIGHT as f64 / 2.0;
    let left = view.center_re - view.width / 2.0;
    for (x, pixel) in out.iter_mut().enumerate() {
        let mut sum = [0.0f64; 3];
        for (dx, dy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
            let re = left + (x as f64 + dx) * step;
            let im = top - (row as f64 + dy) * step;
            let rgb = color(escape(re, im, view.max_iter), view.max_iter);
            for (total, channel) in sum.iter_mut().zip(rgb) {
                *total += channel;
            }
        }
        let byte = |total: f64| ((total / 4.0) * 255.0).round().clamp(0.0, 255.0) as u32;
        *pixel = 0xFF00_0000 | byte(sum[2]) << 16 | byte(sum[1]) << 8 | byte(sum[0]);
    }
}

/// Renders row `row` of `view` straight into the shared picture.
pub fn draw_row(view: &View, row: usize) {
    let mut pixels = [0u32; WIDTH];
    render_row(view, row % HEIGHT, &mut pixels);
    let start = (row % HEIGHT) * WIDTH;
    for (cell, pixel) in PICTURE[start..start + WIDTH].iter().zip(pixels) {
        // Relaxed: pixels carry no other data; the page reads whatever is there each frame.
        cell.store(pixel, Ordering::Relaxed);
    }
    // Release: a reader that sees the new version (Acquire in `version`) sees these pixels.
    DRAWN.fetch_add(1, Ordering::Release);
}

/// The picture's version: it changes whenever a row was drawn into it (by the live demo's
/// workers or by the benchmark), so the page copies the picture only when it changed.
pub fn version() -> u32 {
    // Acquire: pairs with `draw_row`; the page reads the pixels after this.
    DRAWN.load(Ordering::Acquire)
}

/// The picture's address in linear memory, for the page to read it as RGBA bytes.
pub fn picture_address() -> usize {
    PICTURE.as_ptr() as usize
}

/// A smooth (fractional) escape count, or `None` inside the set.
fn escape(c_re: f64, c_im: f64, max_iter: u32) -> Option<f64> {
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for n in 0..max_iter {
        let (re2, im2) = (re * re, im * im);
        if re2 + im2 > 256.0 {
            // Smooth colouring: subtract how far past the bailout the point went.
            let log_modulus = (re2 + im2).ln() / 2.0;
            return Some(f64::from(n) + 1.0 - (log_modulus / core::f64::consts::LN_2).log2());
        }
        im = 2.0 * re * im + c_im;
        re = re2 - im2 + c_re;
    }
    None
}

/// A colour (red, green, blue in 0–1) for an escape count: a cosine palette from deep blue
/// through teal to gold; the inside of the set is near-black blue.
fn color(escaped: Option<f64>, max_iter: u32) -> [f64; 3] {
    let Some(n) = escaped else {
        return [0.043, 0.059, 0.102];
    };
    let t = (n / 48.0 + 0.62).fract();
    let fade = (n / f64::from(max_iter.min(400))).min(1.0).sqrt();
    let channel = |phase: f64| -> f64 {
        let c = 0.5 + 0.5 * (core::f64::consts::TAU * (t + phase)).cos();
        c * (0.35 + 0.65 * fade)
    };
    [channel(0.0), channel(0.12), channel(0.28)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn views_repeat_and_narrow() {
        assert_eq!(view(3), view(3 + VIEWS));
        assert!(view(5).width < view(4).width);
        assert!(view(5).max_iter > view(4).max_iter);
    }

    #[wasm_bindgen_test]
    fn rows_are_deterministic_and_cover_the_width() {
        let view = view(2);
        let (mut a, mut b) = ([0u32; WIDTH], [0u32; WIDTH]);
        render_row(&view, 123, &mut a);
        render_row(&view, 123, &mut b);
        assert_eq!(a, b);
        assert!(
            a.iter().all(|pixel| pixel >> 24 == 0xFF),
            "every pixel is opaque"
        );
        let distinct = a.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert!(
            distinct > 20,
            "a row of the seahorse valley has many colours, got {distinct}"
        );
    }

    #[wasm_bindgen_test]
    fn points_inside_the_set_never_escape() {
        assert_eq!(escape(0.0, 0.0, 1000), None);
        assert_eq!(escape(-1.0, 0.0, 1000), None);
        assert!(escape(1.0, 1.0, 1000).is_some_and(|n| n < 5.0));
    }

    #[wasm_bindgen_test]
    fn row_tasks_walk_through_rows_then_views() {
        let height = HEIGHT as u32;
        assert_eq!(row_of(0), (0, 0));
        assert_eq!(row_of(height + 2), (1, 2));
        assert_eq!(row_of(height - 1), (0, HEIGHT as u16 - 1));
        assert_eq!(row_of(height * u32::from(VIEWS)), (0, 0));
    }
}

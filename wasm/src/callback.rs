//! Calling the app's callbacks (the event sink, the notice sink, a [`JsPool`](crate::JsPool)'s
//! `onEvent` and `onNotice`) so that a bug in one cannot stop the pool.
//!
//! A panic aborts (`panic = "abort"`): it traps, and a trap unwinds every wasm frame up to the
//! nearest JavaScript frame. Called straight from the pool, a sink that panics would unwind
//! the pool's pump half-way (its state left "busy": nothing delivered ever again). So every
//! callback runs behind a JavaScript frame ([`guarded`]), where its trap — or a JavaScript
//! callback's exception — stops and comes back as an error; the pool then reports it like the
//! browser reports an exception thrown by an event listener ([`report`]: the console shows it
//! as uncaught, `window.onerror` sees it) and goes on with the next event. A callback that
//! fails loses only the call it was given.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen(inline_js = "export function foreman_guarded(f) { f(); }")]
extern "C" {
    /// Calls `f` from a JavaScript frame: a trap or an exception inside it ends there.
    #[wasm_bindgen(js_name = foreman_guarded, catch)]
    fn call_from_js(f: &mut dyn FnMut()) -> Result<(), JsValue>;
}

/// Runs `callback` (an app's callback, with its argument) so that a trap or exception in it
/// is reported instead of unwinding the caller. Returns whether it returned normally.
pub(crate) fn guarded(callback: impl FnOnce()) -> bool {
    let mut callback = Some(callback);
    let result = call_from_js(&mut || {
        if let Some(callback) = callback.take() {
            callback();
        }
    });
    match result {
        Ok(()) => true,
        Err(error) => {
            report(&error);
            false
        }
    }
}

/// Reports an error of the app's callback as uncaught: the browser's console shows it and the
/// global `error` event carries it, as for an exception thrown by an event listener.
pub(crate) fn report(error: &JsValue) {
    let global = js_sys::global();
    let report_error = js_sys::Reflect::get(&global, &JsValue::from_str("reportError"))
        .ok()
        .and_then(|value| value.dyn_into::<js_sys::Function>().ok());
    // `reportError` does not throw; without it (an old browser), the console.
    let reported = report_error.is_some_and(|report| report.call1(&global, error).is_ok());
    if !reported {
        web_sys::console::error_2(&"foreman: a callback failed:".into(), error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test]
    fn a_callback_that_returns_is_called_once() {
        let mut calls = 0;
        assert!(guarded(|| calls += 1));
        assert_eq!(calls, 1);
    }

    #[wasm_bindgen_test]
    fn a_callback_that_throws_comes_back_as_false_and_the_caller_goes_on() {
        let throws = js_sys::Function::new_no_args("throw new Error('callback test: thrown')");
        let mut after = false;
        assert!(!guarded(|| {
            // An exception thrown by JavaScript unwinds the wasm frames like a trap does.
            if let Err(error) = throws.call0(&JsValue::NULL) {
                wasm_bindgen::throw_val(error);
            }
            after = true;
        }));
        assert!(!after, "the callback stopped at the exception");
    }
}

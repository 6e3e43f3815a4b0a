// foreman-wasm's thread script: shipped inside the crate as a wasm-bindgen snippet, so that an
// app copies no worker script of its own. It is two things at once:
//
// - on the page, a module the app's glue imports: `startThread` starts a module Web Worker
//   running this same file;
// - in that Web Worker, the thread itself: it waits for its start message, imports the app's
//   glue (its URL comes with the message), instantiates the module on the page's shared
//   memory, and runs one of the library's entry points:
//   - "worker": one worker slot, while holding the thread's *life lock*: a Web Lock that the
//     browser releases only once this thread has left the module for good (the entry point
//     returned or trapped) or the worker was terminated. The page waits for that lock before
//     it recovers the slot and frees the thread's stack: the grant is the proof of death.
//   - "clock": the pool's clock and watchdog, until the pool stops it; then the thread frees
//     its own stack and thread-local block.
//
// Other Web Workers of the app (a rayon pool's, say) import this module too, through the
// glue; they ignore it: only a message of foreman's own type starts a thread.

const INIT = 'foreman-wasm:start-thread';

if (typeof WorkerGlobalScope !== 'undefined' && self instanceof WorkerGlobalScope) {
  self.addEventListener('message', function onStart({ data }) {
    if (data?.type !== INIT) return;
    self.removeEventListener('message', onStart);
    run(data).finally(() => close());
  });
}

async function run(init) {
  let glue;
  try {
    glue = await import(init.mainJS);
  } catch (error) {
    postMessage({ kind: 'failed', message: `cannot load the app's module ${init.mainJS}: ${error}` });
    return;
  }
  if (init.role === 'clock') {
    try {
      const wasm = glue.initSync({ module: init.module, memory: init.memory, thread_stack_size: init.stackSize });
      glue.__foreman_clock(init.body, init.origin, init.periodMs);
      // The clock stopped for good: free this thread's stack and thread-local block (from the
      // shared heap). Nothing else would: the page never learns where they are, and a clock
      // that left them behind would cost every pool its stack until the memory is full.
      wasm.__wbindgen_thread_destroy();
    } catch (error) {
      postMessage({ kind: 'failed', message: String(error) });
    }
    return;
  }
  let alive = false;
  try {
    const wasm = glue.initSync({ module: init.module, memory: init.memory, thread_stack_size: init.stackSize });
    await navigator.locks.request(init.lock, () => {
      alive = true;
      const stackAlloc = wasm.__stack_alloc.value;
      postMessage({ kind: 'alive', stackAlloc, tlsBase: wasm.__tls_base.value });
      try {
        glue.__foreman_worker(init.body, init.slot, init.heap, stackAlloc, init.stackSize);
        postMessage({ kind: 'exited' });
      } catch (error) {
        // A trap (a panic aborts) or an error: the module's frames are gone, and this thread
        // never calls into the module again.
        postMessage({ kind: 'trapped', message: String(error) });
      }
    });
  } catch (error) {
    // The module could not be instantiated here, or the lock could not be taken: the thread
    // never ran a task. (Errors after `alive` are reported above.)
    if (!alive) postMessage({ kind: 'failed', message: String(error) });
  }
}

/** Starts a thread: a module Web Worker named `name` running this file, told `init`. */
export function startThread(name, init) {
  const worker = new Worker(new URL(import.meta.url), { type: 'module', name });
  worker.postMessage({ ...init, type: INIT });
  return worker;
}

// A foreman thread: a module Web Worker that instantiates the page's wasm module on the page's
// shared memory. Three roles, chosen by the first message:
//
// - "worker": runs one worker slot (`worker_main`) while holding the thread's life lock, a Web
//   Lock that the browser releases only when this thread has left the module for good (the
//   call returned or trapped) or the worker was terminated. The page waits for that lock before
//   it recovers the slot and frees the thread's stack.
// - "clock": ticks the supervisor's clock and watchdog (`clock_main`) for as long as the page
//   lives, so that they do not depend on the page's main thread, whose timers browsers throttle.
// - "bench": the benchmark driver; it blocks on foreman's or rayon's threads, which the page's
//   main thread may not do.

import { initSync, worker_main, clock_main, benchForeman, benchRayon } from './pkg/foreman_wasm.js';

self.addEventListener('message', ({ data }) => {
  if (data.kind === 'worker') {
    runWorker(data);
  } else if (data.kind === 'clock') {
    initSync({ module: data.module, memory: data.memory });
    clock_main(data.periodMs);
    close();
  } else if (data.kind === 'bench') {
    runBenchDriver(data);
  }
}, { once: true });

async function runWorker({ module, memory, slot, thread, stackSize, lock }) {
  let alive = false;
  try {
    const wasm = initSync({ module, memory, thread_stack_size: stackSize });
    await navigator.locks.request(lock, () => {
      alive = true;
      const stackAlloc = wasm.__stack_alloc.value;
      postMessage({ kind: 'alive', stackAlloc, tlsBase: wasm.__tls_base.value });
      try {
        worker_main(slot, thread, stackAlloc, stackSize);
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
  close();
}

function runBenchDriver({ module, memory }) {
  initSync({ module, memory });
  self.addEventListener('message', ({ data }) => {
    try {
      const ms = data.run === 'rayon' ? benchRayon() : benchForeman();
      postMessage({ ok: true, ms });
    } catch (error) {
      postMessage({ ok: false, error: String(error) });
    }
  });
  postMessage({ ready: true });
}

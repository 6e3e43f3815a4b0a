// The benchmark driver: a Web Worker of the demo page on the demo's module and memory. It runs
// the rayon side of the benchmark (`benchRayon`), whose `par_iter` blocks its caller — which
// the page's own thread may not do. The page sends `{ module, memory }` once, then `"rayon"`
// for each run, and gets `{ ok: true }` or `{ ok: false, error }` back.
import { initSync, benchRayon } from './pkg/foreman_demo.js';

self.addEventListener('message', ({ data }) => {
  if (data?.module) {
    initSync({ module: data.module, memory: data.memory });
    postMessage({ ready: true });
    return;
  }
  try {
    benchRayon();
    postMessage({ ok: true });
  } catch (error) {
    postMessage({ ok: false, error: String(error) });
  }
});

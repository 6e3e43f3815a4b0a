// The browser benchmark's driver for `cargo xtask bench` (suite "browser"): opens the demo
// page in one browser (browser.js's drivers, as the end-to-end tests), prepares foreman's pool
// and a wasm-bindgen-rayon pool of the same number of threads, then measures on command. xtask
// decides the rounds (paired, rotating order, its stopping rule) and does the statistics; this
// script only runs one measurement per line it reads:
//
//   stdin                      stdout
//   (start)                    ready
//   foreman | rayon            ms <milliseconds>
//   quit                       (exits 0)
//
// Anything that goes wrong is printed as `error <message>` and the script exits 1. Run it with
// `cargo xtask bench --only browser`; the environment is that of the end-to-end tests
// (FOREMAN_BROWSER, FOREMAN_BROWSER_PATH, FOREMAN_DEMO_URL) plus FOREMAN_BENCH_THREADS.
import { createInterface } from 'node:readline';
import { env, launch } from './browser.js';

const DEMO = env('FOREMAN_DEMO_URL');
const THREADS = Number(env('FOREMAN_BENCH_THREADS'));
/** One measurement takes about a second; anything near this is a hang. */
const RUN_TIMEOUT_MS = 120_000;
/** Closing the browser (and its pages) takes a second or two. */
const CLOSE_TIMEOUT_MS = 30_000;

/** `promise`, or a rejection "hung: <what>" after `ms`. */
function bounded(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what} (${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

let browser;
try {
  browser = await launch();
  const page = await browser.newPage();
  await page.goto(DEMO);
  await page.waitFor(() => window.foreman?.view || window.foreman?.error, null, 'the demo to start', 60_000);
  const failed = await page.evaluate(() => window.foreman.error);
  if (failed) throw new Error(`the demo did not start: ${failed}`);
  await bounded(page.evaluate((threads) => window.foreman.bench.prepare(threads), THREADS),
    RUN_TIMEOUT_MS, `preparing ${THREADS} threads`);
  console.log('ready');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const which = line.trim();
    if (which === 'quit') break;
    if (which !== 'foreman' && which !== 'rayon') throw new Error(`unknown command "${which}"`);
    const ms = await bounded(page.evaluate((which) => window.foreman.bench.run(which), which),
      RUN_TIMEOUT_MS, `a ${which} run`);
    console.log(`ms ${ms}`);
  }
  if (page.errors.length > 0) throw new Error(`the page reported errors: ${page.errors.join('; ')}`);
  await bounded(browser.close(), CLOSE_TIMEOUT_MS, 'closing the browser');
  // stdin, still open until xtask sees us exit, would keep node running.
  process.exit(0);
} catch (error) {
  console.log(`error ${String(error?.message ?? error).replaceAll('\n', ' ')}`);
  await bounded(browser?.close() ?? Promise.resolve(), CLOSE_TIMEOUT_MS, 'closing the browser')
    .catch(() => {});
  process.exit(1);
}

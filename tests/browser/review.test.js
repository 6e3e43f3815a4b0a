// Review findings against foreman-wasm (branch review-rw), as tests on the example app's page
// (wasm/examples/words). Each test demonstrates one finding of the review; each failed before
// its fix (the comments say how) and must pass.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { env, launch } from './browser.js';

const WORDS = env('FOREMAN_WORDS_URL');
const TIMEOUT = 180_000;

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Runs `body(page)` on a fresh page of the app (loaded), and closes it whatever happens. */
async function withApp(body) {
  const page = await browser.newPage();
  try {
    await page.goto(WORDS);
    await page.waitFor(() => window.words?.ready || window.words?.error, null, 'the app to load', 30_000);
    assert.equal(await page.evaluate(() => window.words.error), null);
    await body(page);
  } finally {
    await page.close();
  }
}

test('finding 1: a callback may unsubscribe itself (onEvent(null) inside onEvent), and the pool is freed as usual',
  { timeout: TIMEOUT },
  () => withApp(async (page) => {
    const outcome = await page.evaluate(async () => {
      const pool = window.words.startWords(1);
      let calls = 0;
      let unsubscribe = null;
      pool.onEvent(() => { // a "once" listener: a common JavaScript idiom
        calls++;
        try { pool.onEvent(null); unsubscribe = 'ok'; } catch (error) { unsubscribe = String(error); }
      });
      pool.trySubmit({ name: 'first', text: 'its outcome goes to onEvent' });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      pool.trySubmit({ name: 'second', text: 'nobody listens any more' });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await pool.drain();
      let free = 'ok';
      try { pool.free(); } catch (error) { free = String(error); }
      return { calls, unsubscribe, free };
    });
    // Before the fix (both browsers): { calls: 2, unsubscribe: 'RuntimeError: unreachable[ executed]',
    //          free: 'Error: attempted to take ownership of Rust value while it was borrowed' }
    assert.deepEqual(outcome, { calls: 1, unsubscribe: 'ok', free: 'ok' });
  }));

test('finding 1b: onNotice may be called inside an onNotice callback',
  { timeout: TIMEOUT },
  () => withApp(async (page) => {
    const outcome = await page.evaluate(async () => {
      const pool = window.words.startWords(1);
      let calls = 0;
      let unsubscribe = null;
      pool.onNotice(() => {
        calls++;
        try { pool.onNotice(() => {}); unsubscribe = 'ok'; } catch (error) { unsubscribe = String(error); }
      });
      // A panicking task, run twice: each death brings notices (heap repaired, …).
      await pool.run({ name: 'bomb', text: '!panic' }).catch(() => {});
      await pool.drain();
      let free = 'ok';
      try { pool.free(); } catch (error) { free = String(error); }
      return { calls, unsubscribe, free };
    });
    assert.deepEqual(outcome, { calls: 1, unsubscribe: 'ok', free: 'ok' });
  }));

test('finding 2: an error thrown by an onEvent callback is reported as uncaught (reportError)',
  { timeout: TIMEOUT },
  () => withApp(async (page) => {
    await page.evaluate(async () => {
      const pool = window.words.startWords(1);
      pool.onEvent(() => { throw new Error('a bug in my onEvent callback'); });
      pool.trySubmit({ name: 'tried', text: 'its outcome goes to onEvent' });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await pool.drain();
      pool.free();
    });
    // The app's bug must surface somewhere: an uncaught error (reportError), at least.
    assert.ok(page.errors.some((e) => e.includes('a bug in my onEvent callback')),
      `the callback's error is reported (page errors: ${JSON.stringify(page.errors)})`);
  }));

test('finding 3: a pool with a watchdog leaves no clock stack or thread-local block behind (see 3b for where a leak would end)',
  { timeout: TIMEOUT },
  () => withApp(async (page) => {
    const outcome = await page.evaluate(async () => {
      const { startWords, heapStats } = window.words;
      const cycle = async () => {
        const pool = startWords(1);
        await pool.run({ name: 'x', text: 'one short task' });
        await pool.drain();
        pool.free();
        // The threads leave; stacks of dead workers are freed after their after-death check.
        await new Promise((resolve) => setTimeout(resolve, 1_000));
      };
      await cycle(); // warm up: the shared heap reaches its working size
      const before = heapStats().shared;
      for (let i = 0; i < 8; i++) await cycle();
      return { before, after: heapStats().shared };
    });
    const grown = outcome.after - outcome.before;
    assert.ok(grown < 2 * 1024 * 1024,
      `8 pools started and freed one after the other grew the shared heap by ${(grown / 1048576).toFixed(1)} MiB`);
  }));

test('finding 8: a task killed because its pool was freed is not reported as hung',
  { timeout: TIMEOUT },
  () => withApp(async (page) => {
    const outcome = await page.evaluate(async () => {
      const pool = window.words.startWords(1);
      await pool.run({ name: 'warm', text: 'w' });
      // A task of a few hundred milliseconds (far below the 1 s watchdog), then the pool is freed.
      const run = pool.run({ name: 'long', text: 'word '.repeat(1_000_000) });
      await new Promise((resolve) => setTimeout(resolve, 30));
      pool.free();
      return run.then(() => ({ kind: 'resolved' }), (error) => ({ kind: error.kind, cause: error.cause }));
    });
    // Chromium lets the terminated thread finish the task (its grace period): it resolves.
    // Firefox kills it at once: the task is handed back, with the cause of a hang it never had.
    if (outcome.kind !== 'resolved') {
      assert.doesNotMatch(outcome.cause, /hung/, `the cause given for a task of a freed pool: ${outcome.cause}`);
    }
  }));

test('finding 9: freeing a pool while its clock thread\'s wake-up is on its way throws nothing',
  { timeout: TIMEOUT },
  () => withApp(async (page) => {
    await page.evaluate(async () => {
      const pool = window.words.startWords(1);
      await pool.run({ name: 'warm', text: 'w' });
      pool.run({ name: 'loop', text: '!hang' }).catch(() => {});
      // Keep the page busy past the watchdog's deadline: the clock thread flags the hang and
      // posts its wake-up, which waits in the page's task queue…
      const until = performance.now() + 1_500;
      while (performance.now() < until) { /* busy */ }
      pool.free(); // …while the pool is dropped, in the same task.
      await new Promise((resolve) => setTimeout(resolve, 500));
    });
    // Chromium before the fix: ["closure invoked recursively or after being dropped"].
    assert.deepEqual(page.errors, []);
  }));

test('finding 10: a JsPool whose handle is garbage-collected runs its pending tasks to the end',
  { timeout: TIMEOUT },
  async (t) => {
    if (process.env.FOREMAN_BROWSER !== 'chromium') {
      t.skip('needs a forced garbage collection (Chromium --js-flags=--expose-gc)');
      return;
    }
    const { chromium } = await import('playwright-core');
    const args = (process.env.FOREMAN_CHROMIUM_ARGS ?? '--headless --no-sandbox').split(' ').concat(['--js-flags=--expose-gc']);
    const gcBrowser = await chromium.launch({ executablePath: env('FOREMAN_BROWSER_PATH'), args, timeout: 60_000 });
    try {
      const page = await (await gcBrowser.newContext()).newPage();
      await page.goto(WORDS);
      await page.waitForFunction(() => window.words?.ready || window.words?.error, null, { timeout: 30_000 });
      const outcomes = await page.evaluate(async () => {
        // A pool per call; the caller keeps the promise, not the pool.
        const summarize = (text) => window.words.startWords(1).run({ name: 'x', text });
        const runs = [1, 2, 3].map(() => summarize('word '.repeat(300_000))
          .then(() => 'resolved', (error) => `${error.kind}: ${error.message}`));
        for (let i = 0; i < 10; i++) { gc(); await new Promise((resolve) => setTimeout(resolve, 10)); }
        return Promise.all(runs);
      });
      // Before the fix: three times "handed-back: the task was handed back unrun: the pool shut down".
      assert.deepEqual(outcomes, ['resolved', 'resolved', 'resolved']);
    } finally {
      await gcBrowser.close();
    }
  });

test('finding 3b: 700 pools one after the other all start and finish (a leaked clock stack per pool would fill the 1 GiB memory at about 490)',
  { timeout: 300_000 },
  () => withApp(async (page) => {
    // Started in the page, watched from here: a stalled pool never settles its promises.
    await page.evaluate(() => {
      const { startWords } = window.words;
      const state = (window.review = { cycles: 0, phase: 'running', pool: null });
      (async () => {
        for (let i = 0; i < 700; i++) {
          const pool = startWords(2);
          pool.onNotice(() => {});
          state.pool = pool;
          await Promise.all([pool.run({ name: 'a', text: 'x' }), pool.run({ name: 'b', text: 'y' })]);
          pool.free();
          state.pool = null; // a freed pool cannot be asked for its threads
          state.cycles++;
        }
        state.phase = 'done';
      })().catch((error) => { state.phase = `threw: ${error}`; });
    });
    let last = -1;
    let since = Date.now();
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const state = await page.evaluate(() => ({
        cycles: window.review.cycles,
        phase: window.review.phase,
        threads: window.review.pool?.threads().map((t) => t.state),
        shared: window.words.heapStats().shared,
      }));
      if (state.phase !== 'running') {
        assert.equal(state.phase, 'done');
        return;
      }
      if (state.cycles !== last) {
        last = state.cycles;
        since = Date.now();
      } else if (Date.now() - since > 10_000) {
        // Before the fix (both browsers): stalled at cycle ~490, threads ["loading","loading","none","none"],
        // shared heap ≈ 1 021 MiB.
        assert.fail(`stalled at pool ${state.cycles}: its threads are ${JSON.stringify(state.threads)}, ` +
          `the shared heap holds ${(state.shared / 1048576).toFixed(0)} MiB`);
      }
    }
  }));

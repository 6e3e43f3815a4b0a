// End-to-end tests of the pool features of issue 12 on the Web Worker host, through the
// example app's JavaScript pool (wasm/examples/words: `startWords(workers, options)`):
// worker recycling, restart backoff, cancellation and per-task deadlines. Each test loads a
// fresh page in a fresh context, in the browser `cargo xtask test` names.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertMatches, env, launch } from './browser.js';

const WORDS = env('FOREMAN_WORDS_URL');
const TIMEOUT = { timeout: 180_000 };

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
    assert.deepEqual(page.errors, []);
  } finally {
    await page.close();
  }
}

test('recycling: each worker thread is replaced after its quota, onEvent says "recycled", every task completes once',
  TIMEOUT, () => withApp(async (page) => {
    const outcome = await page.evaluate(async () => {
      const pool = window.words.startWords(2, { recycleAfter: 3 });
      const events = [];
      pool.onEvent((event) => events.push(event));
      const texts = Array.from({ length: 20 }, (_, i) => `text ${i} ${'word '.repeat(i)}`);
      const summaries = await Promise.all(texts.map((text, i) => pool.run({ name: `r${i}`, text })));
      const report = await pool.drain();
      pool.free();
      return {
        names: summaries.map((s) => s.name),
        recycled: events.filter((e) => e.kind === 'recycled'),
        others: events.filter((e) => e.kind !== 'recycled'),
        report,
      };
    });
    assert.deepEqual(outcome.names, Array.from({ length: 20 }, (_, i) => `r${i}`));
    assert.deepEqual(outcome.others, [], 'no crash, nothing else at onEvent');
    // 20 tasks, 3 per thread: at least 20/3 - 2 threads were recycled (the last ones idle).
    assert.ok(outcome.recycled.length >= 5, `${outcome.recycled.length} recycled`);
    for (const event of outcome.recycled) assert.ok(event.worker === 0 || event.worker === 1, JSON.stringify(event));
    assertMatches(outcome.report.snapshot, { completed: 20, submitted: 20, crashes: 0, adds_up: true, state: 'stopped' }, 'snapshot');
  }));

test('recycling: invalid and unknown options are refused with a clear error', TIMEOUT, () => withApp(async (page) => {
  const errors = await page.evaluate(() => {
    const attempt = (options) => {
      try {
        window.words.startWords(1, options).free();
        return 'started';
      } catch (error) {
        return String(error.message ?? error);
      }
    };
    return {
      zero: attempt({ recycleAfter: 0 }),
      typo: attempt({ recycleAftr: 3 }),
      backoff: attempt({ backoff: { initialMs: 10, factor: 2, capMs: 4_000_000_000 } }),
      none: attempt(undefined),
    };
  });
  assert.match(errors.zero, /invalid pool options/);
  assert.match(errors.typo, /invalid pool options: .*recycleAftr/);
  assert.match(errors.backoff, /invalid pool options/);
  assert.equal(errors.none, 'started');
}));

test('backoff: a crashing task\'s replacements start after growing delays; an abort during a long one returns at once',
  TIMEOUT, () => withApp(async (page) => {
    const outcome = await page.evaluate(async () => {
      const { startWords } = window.words;
      // Growing delays: 150 ms, then 300 ms, between the two runs that crash.
      const pool = startWords(1, { backoff: { initialMs: 150, factor: 2, capMs: 1_000 } });
      const notices = [];
      pool.onNotice((notice) => notices.push(notice.text));
      const crashes = [];
      pool.onEvent((event) => { if (event.kind === 'crashed') crashes.push(performance.now()); });
      const failed = await pool.run({ name: 'boom', text: '!panic' }).catch((error) => error.kind);
      const after = await pool.run({ name: 'ok', text: 'fine words' });
      await pool.drain();
      pool.free();
      // A 60 s backoff, then an abort.
      const slow = startWords(1, { backoff: { initialMs: 60_000, factor: 2, capMs: 60_000 } });
      slow.onNotice(() => {});
      let crashed = false;
      slow.onEvent((event) => { if (event.kind === 'crashed') crashed = true; });
      const doomed = slow.run({ name: 'boom', text: '!panic' }).catch((error) => error.kind);
      while (!crashed) await new Promise((resolve) => setTimeout(resolve, 10));
      const started = performance.now();
      const report = await slow.abort();
      const abortMs = performance.now() - started;
      return { failed, after: after.name, crashes, notices, abortMs, doomed: await doomed, report };
    });
    assert.equal(outcome.failed, 'dead-lettered');
    assert.equal(outcome.after, 'ok');
    assert.equal(outcome.crashes.length, 1, 'the retried crash (the final one rejects the run)');
    assert.ok(outcome.notices.some((text) => /replacement starts in 150 ms/.test(text)), JSON.stringify(outcome.notices));
    assert.ok(outcome.notices.some((text) => /replacement starts in 300 ms/.test(text)), JSON.stringify(outcome.notices));
    assert.ok(outcome.abortMs < 3_000, `the abort took ${outcome.abortMs} ms during a 60 s backoff`);
    assert.equal(outcome.doomed, 'handed-back');
    assertMatches(outcome.report.snapshot, { adds_up: true, state: 'stopped' }, 'snapshot');
  }));

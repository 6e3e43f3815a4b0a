// End-to-end tests of the pool features of issue 12 on the Web Worker host, through the
// example app's JavaScript pool (wasm/examples/words: `startWords(workers, options)`):
// worker recycling, restart backoff, cancellation and per-task deadlines. Each test loads a
// fresh page in a fresh context, in the browser `cargo xtask test` names.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertMatches, launch } from './browser.js';
import { withApp as withAppOf } from './words-app.js';
const TIMEOUT = { timeout: 180_000 };

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Runs `body(page)` on a fresh page of the app (loaded), and closes it whatever happens. */
function withApp(body) {
  return withAppOf(browser, body);
}

/**
 * Starts (and frees) a one-worker pool with each `[name, options]` of `cases` (no options when
 * the pair has none) and returns, by name, 'started' or the error's message.
 */
function startErrors(page, cases) {
  return page.evaluate((cases) => {
    const attempt = (...options) => {
      try {
        window.words.startWords(1, ...options).free();
        return 'started';
      } catch (error) {
        return String(error.message ?? error);
      }
    };
    return Object.fromEntries(cases.map(([name, ...options]) => [name, attempt(...options)]));
  }, cases);
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

test('heap limit: a worker whose heap passes heapLimit after a task is recycled onto a renewed heap; a limit never reached recycles nothing',
  TIMEOUT, () => withApp(async (page) => {
    const outcome = await page.evaluate(async () => {
      const { startWords, heapStats } = window.words;
      // One worker, its tasks in turn; `!leak N` leaks N KiB of its heap.
      const run = async (options, texts) => {
        const pool = startWords(1, options);
        const events = [];
        pool.onEvent((event) => events.push(event));
        const renewed = heapStats().renewed;
        const names = [];
        for (const [i, text] of texts.entries()) names.push((await pool.run({ name: `t${i}`, text })).name);
        const report = await pool.drain();
        pool.free();
        return { names, events, renewed: heapStats().renewed - renewed, report };
      };
      return {
        // 1200 KiB: past 1 MiB, recycled after it; 600 KiB on the renewed heap: under it.
        leaking: await run({ heapLimit: 1 << 20 }, ['one two', '!leak 1200', 'three', '!leak 600', 'four']),
        // With a quota as well: the quota recycles after 2 tasks, the limit after the leak.
        both: await run({ heapLimit: 1 << 20, recycleAfter: 2 }, ['one', '!leak 1200', 'two', '!leak 1200', 'three']),
        under: await run({ heapLimit: 16 << 20 }, ['one', '!leak 600', 'two', '!leak 600', 'three']),
      };
    });
    const expected = (n) => Array.from({ length: n }, (_, i) => `t${i}`);
    for (const [name, { names, events }] of Object.entries(outcome)) {
      assert.deepEqual(names, expected(5), `${name}: every task completes once`);
      assert.ok(events.every((e) => e.kind === 'recycled' && e.worker === 0), `${name}: ${JSON.stringify(events)}`);
    }
    assert.equal(outcome.leaking.events.length, 1);
    assert.equal(outcome.leaking.renewed, 1, 'the leaking heap was renewed for the fresh thread');
    assertMatches(outcome.leaking.report.snapshot, { completed: 5, recycles: 1, crashes: 0, restarts: 0, adds_up: true, state: 'stopped' }, 'leaking');
    // After t1 (quota 2 and the leak together), after t3 (the leak: quota 2 again).
    assert.equal(outcome.both.events.length, 2);
    assert.equal(outcome.both.renewed, 2);
    assertMatches(outcome.both.report.snapshot, { completed: 5, recycles: 2, crashes: 0, adds_up: true }, 'both');
    assert.equal(outcome.under.events.length, 0, 'a limit never reached recycles nothing');
    assert.equal(outcome.under.renewed, 0);
    assertMatches(outcome.under.report.snapshot, { completed: 5, recycles: 0, adds_up: true }, 'under');
  }));

test('heap limit: an invalid heapLimit is refused with a clear error', TIMEOUT, () => withApp(async (page) => {
  const errors = await startErrors(page, [
    ['negative', { heapLimit: -1 }],
    ['fraction', { heapLimit: 1.5 }],
    ['text', { heapLimit: '64MB' }],
    ['valid', { heapLimit: 64 << 20 }],
  ]);
  assert.match(errors.negative, /invalid pool options/);
  assert.match(errors.fraction, /invalid pool options/);
  assert.match(errors.text, /invalid pool options/);
  assert.equal(errors.valid, 'started');
}));

test('recycling: invalid and unknown options are refused with a clear error', TIMEOUT, () => withApp(async (page) => {
  const errors = await startErrors(page, [
    ['zero', { recycleAfter: 0 }],
    ['typo', { recycleAftr: 3 }],
    ['backoff', { backoff: { initialMs: 10, factor: 2, capMs: 4_000_000_000 } }],
    ['none'],
  ]);
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

/** In the page: what a `run` promise settled with, `{ kind, name, … }` (kind `resolved`). */
const SETTLED = `(promise) => promise.then(
  (value) => ({ kind: 'resolved', value }),
  (error) => ({ kind: error.kind, name: error.name, message: error.message, cause: error.cause }))`;

test('cancel, queued and running: run(input, { signal }) rejects with an AbortError; a queued task never runs, a running one\'s worker is replaced',
  TIMEOUT, () => withApp(async (page) => {
    const outcome = await page.evaluate(async (SETTLED) => {
      const settled = eval(SETTLED);
      const pool = window.words.startWords(1);
      const events = [];
      pool.onEvent((event) => events.push(event));
      pool.onNotice(() => {});
      // Running: a task that never returns (the watchdog would kill it after 1 s).
      const running = new AbortController();
      const hang = settled(pool.run({ name: 'spin', text: '!hang' }, { signal: running.signal }));
      // Queued behind it.
      const queued = new AbortController();
      const waiting = settled(pool.run({ name: 'queued', text: 'never summarized' }, { signal: queued.signal }));
      await new Promise((resolve) => setTimeout(resolve, 200));
      const before = performance.now();
      queued.abort('changed my mind');
      const queuedOutcome = await waiting;
      const queuedMs = performance.now() - before;
      running.abort();
      const runningOutcome = await hang;
      const runningMs = performance.now() - before;
      const after = await pool.run({ name: 'after', text: 'the replacement works' });
      const report = await pool.drain();
      pool.free();
      return { queuedOutcome, queuedMs, runningOutcome, runningMs, after: after.name, events, report };
    }, SETTLED);
    assertMatches(outcome.queuedOutcome, { kind: 'cancelled', name: 'AbortError', cause: 'changed my mind' }, 'queued');
    assertMatches(outcome.runningOutcome, { kind: 'cancelled', name: 'AbortError' }, 'running');
    assert.ok(outcome.queuedMs < 500 && outcome.runningMs < 900,
      `rejected at once (${outcome.queuedMs.toFixed(0)} ms, ${outcome.runningMs.toFixed(0)} ms), before the 1 s watchdog`);
    assert.equal(outcome.after, 'after');
    assert.deepEqual(outcome.events.map((e) => e.kind), [], 'no hang, no crash event: the cancellations are the runs\' ends');
    assertMatches(outcome.report.snapshot, { cancelled: 2, completed: 1, dead_lettered: 0, adds_up: true }, 'snapshot');
  }));

test('cancel: an already aborted signal rejects at once and submits nothing; an abort after the outcome changes nothing',
  TIMEOUT, () => withApp(async (page) => {
    const outcome = await page.evaluate(async (SETTLED) => {
      const settled = eval(SETTLED);
      const pool = window.words.startWords(1);
      const early = await settled(pool.run({ name: 'x', text: 'y' }, { signal: AbortSignal.abort('no') }));
      const controller = new AbortController();
      const done = await settled(pool.run({ name: 'done', text: 'words here' }, { signal: controller.signal }));
      controller.abort();
      await new Promise((resolve) => setTimeout(resolve, 100));
      const invalid = await settled(pool.run({ name: 'x', text: 'y' }, { signal: 'not a signal' }));
      const typo = await settled(pool.run({ name: 'x', text: 'y' }, { deadlin: 5 }));
      const snapshot = pool.snapshot();
      pool.free();
      return { early, done, invalid, typo, snapshot };
    }, SETTLED);
    assertMatches(outcome.early, { kind: 'cancelled', name: 'AbortError', cause: 'no' }, 'early');
    assert.equal(outcome.done.kind, 'resolved');
    assert.equal(outcome.done.value.name, 'done');
    assertMatches(outcome.invalid, { kind: 'invalid-options' }, 'invalid');
    assertMatches(outcome.typo, { kind: 'invalid-options' }, 'typo');
    assertMatches(outcome.snapshot, { submitted: 1, completed: 1, cancelled: 0, adds_up: true }, 'snapshot');
  }));

test('cancel racing completion: every run settles exactly once, and the counters agree', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async () => {
    const pool = window.words.startWords(2);
    pool.onNotice(() => {});
    const extra = [];
    pool.onEvent((event) => extra.push(event.kind));
    // Both workers up first: the races are with runs, not with the threads' start.
    await Promise.all([pool.run({ name: 'a', text: 'warm up' }), pool.run({ name: 'b', text: 'warm up' })]);
    const runs = Array.from({ length: 24 }, (_, i) => {
      const controller = new AbortController();
      let settles = 0;
      const promise = pool.run({ name: `r${i}`, text: 'word '.repeat(20_000 * (i % 6)) + 'end' }, { signal: controller.signal })
        .then(() => { settles += 1; return 'completed'; }, (error) => { settles += 1; return error.name; });
      setTimeout(() => controller.abort(), (i % 8) * 4);
      return { promise, settles: () => settles };
    });
    const kinds = await Promise.all(runs.map((run) => run.promise));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const report = await pool.drain();
    pool.free();
    return { kinds, settles: runs.map((run) => run.settles()), extra, report };
  });
  assert.deepEqual(outcome.settles, Array(24).fill(1), 'each run settled once');
  const completed = outcome.kinds.filter((k) => k === 'completed').length;
  const aborted = outcome.kinds.filter((k) => k === 'AbortError').length;
  assert.equal(completed + aborted, 24, JSON.stringify(outcome.kinds));
  assert.deepEqual(outcome.extra, [], 'no other events');
  assertMatches(outcome.report.snapshot, { completed: completed + 2, cancelled: aborted, submitted: 26, adds_up: true }, 'snapshot');
  console.log(`cancel racing completion: ${completed} completed, ${aborted} cancelled`);
}));

test('cancel: an abort with cancelled runs queued ends each run once', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (SETTLED) => {
    const settled = eval(SETTLED);
    const pool = window.words.startWords(1);
    await pool.run({ name: 'warm', text: 'the worker is up' });
    const busy = settled(pool.run({ name: 'busy', text: 'word '.repeat(400_000) }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const controllers = [0, 1, 2].map(() => new AbortController());
    const queued = controllers.map((c, i) => settled(pool.run({ name: `q${i}`, text: 'queued words' }, { signal: c.signal })));
    controllers[1].abort();
    const report = await pool.abort();
    const outcomes = await Promise.all([busy, ...queued]);
    pool.free();
    return { outcomes, report };
  }, SETTLED);
  assert.deepEqual(outcome.outcomes.map((o) => o.kind), ['resolved', 'handed-back', 'cancelled', 'handed-back']);
  assertMatches(outcome.report.snapshot, { submitted: 5, completed: 2, handed_back: 3, adds_up: true, state: 'stopped' }, 'snapshot');
}));

test('deadline: run(input, { deadline }) kills a spinning task at its deadline, counted from its start', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (SETTLED) => {
    const settled = eval(SETTLED);
    const pool = window.words.startWords(1);
    pool.onNotice(() => {});
    const hung = [];
    pool.onEvent((event) => { if (event.kind === 'hung') hung.push(event.worker); });
    const started = performance.now();
    // Queued behind a long task for longer than its deadline: time in the queue does not count.
    const long = settled(pool.run({ name: 'long', text: 'word '.repeat(400_000) }));
    const patient = settled(pool.run({ name: 'patient', text: 'quick words' }, { deadline: 50 }));
    const spin = settled(pool.run({ name: 'spin', text: '!hang' }, { deadline: 300 }));
    const [longOutcome, patientOutcome, spinOutcome] = await Promise.all([long, patient, spin]);
    const ms = performance.now() - started;
    pool.free();
    return { longOutcome: longOutcome.kind, patientOutcome: patientOutcome.kind, spinOutcome, hung, ms };
  }, SETTLED);
  assert.equal(outcome.longOutcome, 'resolved');
  assert.equal(outcome.patientOutcome, 'resolved');
  assertMatches(outcome.spinOutcome, { kind: 'dead-lettered' }, 'spinning');
  assert.match(outcome.spinOutcome.cause, /deadline/);
  assert.deepEqual(outcome.hung, [0, 0], 'each of its two runs was hung');
}));

// End-to-end tests of foreman-wasm's example app (wasm/examples/words): a task type that owns
// heap data both ways (a document in, a summary of strings and vectors out), used from
// JavaScript (`JsPool`: `await pool.run(document)`) and from Rust (`Pool` with futures), in
// the browser `cargo xtask test` names. Each test loads a fresh page in a fresh context.
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

/** What `pool.run` rejected with: `{ kind, message, … }`, or `{ kind: 'resolved' }`. */
const CATCH = `(promise) => promise.then(
  (value) => ({ kind: 'resolved', value }),
  (error) => ({ kind: error.kind, message: error.message, error: error.error, cause: error.cause,
    attempts: error.attempts, task: error.task }))`;

test('run: summaries of texts computed on the workers agree with the page', TIMEOUT, () => withApp(async (page) => {
  const texts = [
    'It was the best of times, it was the worst of times.',
    'Ünïcödé wörds, déjà vu — and don\'t split the apostrophe! Don\'t.',
    'one',
    'a a a b b c '.repeat(1000),
  ];
  const results = await page.evaluate(async (texts) => {
    const pool = window.words.pool;
    const summaries = await Promise.all(texts.map((text, i) => pool.run({ name: `t${i}`, text })));
    return { summaries, digests: texts.map((text) => window.words.sha256(text)) };
  }, texts);
  results.summaries.forEach((summary, i) => {
    assert.equal(summary.name, `t${i}`);
    assert.equal(summary.sha256, results.digests[i], `the digest of text ${i}`);
  });
  assertMatches(results.summaries[0], { words: 12, distinct: 7 }, 'summary 0');
  assert.deepEqual(results.summaries[0].top.slice(0, 3), [['it', 2], ['of', 2], ['the', 2]]);
  assert.deepEqual(results.summaries[1].top.find(([word]) => word === "don't"), ["don't", 2]);
  assertMatches(results.summaries[2], { words: 1, distinct: 1 }, 'summary 2');
  assert.deepEqual(results.summaries[3].top, [['a', 3000], ['b', 2000], ['c', 1000]]);
  // The page's own button runs the same pool.
  await page.click('#run');
  await page.waitFor(() => document.querySelector('#output').textContent.includes('sha256'), null, 'the summary on the page');
  assert.match(await page.text('#output'), /"words": 12/);
  await page.screenshot('words');
}));

test('run waits for room: 600 concurrent documents through a queue of 64 all complete', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async () => {
    const pool = window.words.pool;
    const texts = Array.from({ length: 600 }, (_, i) => `document ${i} ${'word '.repeat(i % 50)}`);
    const summaries = await Promise.all(texts.map((text, i) => pool.run({ name: `d${i}`, text })));
    const wrong = summaries.filter((s, i) => s.name !== `d${i}` || s.sha256 !== window.words.sha256(texts[i]));
    const report = await pool.drain();
    return { done: summaries.length, wrong: wrong.length, report, threads: pool.threads() };
  });
  assertMatches(outcome, { done: 600, wrong: 0 }, 'outcome');
  assertMatches(outcome.report.snapshot, { completed: 600, submitted: 600, adds_up: true, state: 'stopped' }, 'snapshot');
  assert.deepEqual(outcome.report.handedBack, []);
  // The results were freed on the page: the workers' heaps got their blocks back.
  for (const thread of outcome.threads) {
    assert.ok(thread.heapInUse < 64 * 1024, `a worker heap keeps ${thread.heapInUse} bytes after the drain`);
  }
}));

test('bad input and a failing task are refused or failed, with clear errors; nothing crashes', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (CATCH) => {
    const settle = eval(CATCH); // eslint-disable-line no-eval
    const pool = window.words.pool;
    return {
      invalid: await settle(pool.run({ name: 7 })),
      notAnObject: await settle(pool.run('just a string')),
      empty: await settle(pool.run({ name: 'blank', text: ' ... ' })),
      snapshot: pool.snapshot(),
    };
  }, CATCH);
  assertMatches(outcome.invalid, { kind: 'invalid-input' }, 'invalid');
  assert.match(outcome.invalid.message, /the input is not a task/);
  assertMatches(outcome.notAnObject, { kind: 'invalid-input' }, 'not an object');
  assertMatches(outcome.empty, { kind: 'failed', error: 'blank has no words' }, 'empty');
  assert.deepEqual(outcome.empty.task, { name: 'blank', text: ' ... ' });
  assertMatches(outcome.snapshot, { submitted: 1, failed: 1, crashes: 0 }, 'snapshot');
}));

test('a panicking task is retried by a replacement, then dead-lettered; the pool keeps working', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (CATCH) => {
    const settle = eval(CATCH); // eslint-disable-line no-eval
    const pool = window.words.pool;
    const bomb = await settle(pool.run({ name: 'bomb', text: '!panic' }));
    const after = await pool.run({ name: 'after', text: 'still here' });
    return { bomb, after, events: window.words.events, snapshot: pool.snapshot() };
  }, CATCH);
  assertMatches(outcome.bomb, { kind: 'dead-lettered', attempts: 2 }, 'bomb');
  assert.match(outcome.bomb.cause, /^panicked: bomb asked to panic \(.*lib\.rs:\d+\)$/);
  assert.deepEqual(outcome.bomb.task, { name: 'bomb', text: '!panic' });
  assertMatches(outcome.after, { words: 2 }, 'after');
  // The first crash (retried) went to onEvent; the second is the task's own outcome.
  const crashes = outcome.events.filter((e) => e.kind === 'crashed');
  assert.equal(crashes.length, 1);
  assertMatches(crashes[0], { disposition: 'retried', attempt: 2, decision: 'replace' }, 'crash event');
  assertMatches(outcome.snapshot, { crashes: 2, restarts: 2, dead_lettered: 1, completed: 1, adds_up: true }, 'snapshot');
}));

test('a hanging task is killed on each run and dead-lettered; the other worker keeps working', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (CATCH) => {
    const settle = eval(CATCH); // eslint-disable-line no-eval
    const pool = window.words.pool;
    const hang = settle(pool.run({ name: 'loop', text: '!hang' }));
    // While one worker hangs (and is killed, twice), the other summarizes.
    const others = [];
    for (let i = 0; i < 20; i++) others.push(await pool.run({ name: `o${i}`, text: `other ${i}` }));
    return { hang: await hang, others: others.length, events: window.words.events,
      notices: window.words.notices.map((n) => n.text), heap: window.words.heapStats(), snapshot: pool.snapshot() };
  }, CATCH);
  assertMatches(outcome.hang, { kind: 'dead-lettered', attempts: 2 }, 'hang');
  assert.match(outcome.hang.cause, /^killed: its task hung \(no heartbeat for more than 1000 ms\)$/);
  assert.equal(outcome.others, 20);
  assert.equal(outcome.events.filter((e) => e.kind === 'hung').length, 2);
  assert.equal(outcome.notices.filter((n) => n.includes('is being terminated')).length, 2);
  assert.equal(outcome.notices.filter((n) => n.includes('terminated thread is gone')).length, 2);
  assert.equal(outcome.notices.filter((n) => /heap was consistent|died inside the allocator/.test(n)).length, 2);
  assert.equal(outcome.heap.zombieAllocations, 0, 'no killed thread ran on after its death was confirmed');
  assertMatches(outcome.snapshot, { crashes: 2, dead_lettered: 1, completed: 20, adds_up: true }, 'snapshot');
  console.log(`notices: ${outcome.notices.join(' | ')}`);
}));

test('trySubmit never blocks: a full queue says so, and every accepted task reaches onEvent', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async () => {
    const pool = window.words.pool;
    const events = [];
    pool.onEvent((event) => events.push(event));
    let accepted = 0;
    let full = 0;
    for (let i = 0; i < 300; i++) {
      if (pool.trySubmit({ name: `t${i}`, text: `try ${i}` })) accepted++; else full++;
    }
    const start = performance.now();
    while (events.filter((e) => e.kind === 'completed').length < accepted && performance.now() - start < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const completed = events.filter((e) => e.kind === 'completed');
    return { accepted, full, completed: completed.length,
      sample: completed[0], names: new Set(completed.map((e) => e.task.name)).size };
  });
  assert.ok(outcome.full > 0, 'a queue of 64 cannot take 300 tasks at once');
  assert.ok(outcome.accepted >= 64, `at least a queue's worth was accepted (${outcome.accepted})`);
  assert.equal(outcome.completed, outcome.accepted);
  assert.equal(outcome.names, outcome.accepted);
  assertMatches(outcome.sample, { kind: 'completed' }, 'event');
  assert.equal(typeof outcome.sample.output.sha256, 'string');
}));

test('the event callback may call back into its own pool', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async () => {
    const pool = window.words.pool;
    const nested = [];
    let resubmitted = 0;
    pool.onEvent((event) => {
      if (event.kind !== 'completed' || !event.task.name.startsWith('first')) return;
      // From inside the callback: a non-blocking submission, a promise, a snapshot.
      if (pool.trySubmit({ name: `second ${event.task.name}`, text: 'again' })) resubmitted++;
      nested.push(pool.run({ name: `third ${event.task.name}`, text: 'and again' }));
      pool.snapshot();
    });
    for (let i = 0; i < 10; i++) pool.trySubmit({ name: `first ${i}`, text: 'go' });
    const start = performance.now();
    while (nested.length < 10 && performance.now() - start < 30_000) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const thirds = await Promise.all(nested);
    const report = await pool.drain();
    return { resubmitted, thirds: thirds.length, report };
  });
  assertMatches(outcome, { resubmitted: 10, thirds: 10 }, 'outcome');
  assertMatches(outcome.report.snapshot, { completed: 30, adds_up: true }, 'snapshot');
}));

test('drain, then the pool refuses work; abort hands queued tasks back; reopen starts it again', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (CATCH) => {
    const settle = eval(CATCH); // eslint-disable-line no-eval
    const pool = window.words.pool;
    await pool.run({ name: 'a', text: 'first run' });
    const drained = await pool.drain();
    const refusedRun = await settle(pool.run({ name: 'late', text: 'too late' }));
    let refusedTry = null;
    try { pool.trySubmit({ name: 'late', text: 'too late' }); } catch (error) { refusedTry = error.kind; }
    const againDrained = await pool.drain(); // idempotent: resolves at once
    pool.reopen(1);
    // A long queue, then an abort: whatever had not started comes back.
    const runs = Array.from({ length: 40 }, (_, i) => settle(pool.run({ name: `q${i}`, text: 'word '.repeat(50000) })));
    let accepted = 0;
    for (let i = 0; i < 20; i++) if (pool.trySubmit({ name: `t${i}`, text: 'word '.repeat(50000) })) accepted++;
    await new Promise((resolve) => setTimeout(resolve, 50));
    const aborted = await pool.abort();
    const settled = await Promise.all(runs);
    let reopenError = null;
    try { pool.reopen(9); } catch (error) { reopenError = error.message; }
    pool.reopen(2);
    const reopened = await pool.run({ name: 'b', text: 'second life' });
    return { drained, refusedRun, refusedTry, againDrained, aborted, accepted, reopened, reopenError,
      kinds: settled.map((s) => s.kind) };
  }, CATCH);
  assertMatches(outcome.drained.snapshot, { completed: 1, state: 'stopped', adds_up: true }, 'drained');
  assertMatches(outcome.refusedRun, { kind: 'closed' }, 'a run after the drain');
  assert.deepEqual(outcome.refusedRun.task, { name: 'late', text: 'too late' });
  assert.equal(outcome.refusedTry, 'closed');
  assertMatches(outcome.againDrained.snapshot, { completed: 1, state: 'stopped' }, 'a second drain');
  // Aborted: the tasks of `run` that had not started were handed back to their promises, and
  // the try-submitted ones are in the report.
  const handedBack = outcome.kinds.filter((k) => k === 'handed-back').length;
  assert.ok(handedBack > 0, `some queued runs were handed back (${outcome.kinds.join(', ')})`);
  assert.ok(outcome.kinds.every((k) => k === 'resolved' || k === 'handed-back'));
  assert.ok(outcome.aborted.handedBack.length > 0 && outcome.aborted.handedBack.length <= outcome.accepted);
  assert.ok(outcome.aborted.handedBack.every((task) => task.name.startsWith('t')));
  assertMatches(outcome.aborted.snapshot, { state: 'stopped', adds_up: true }, 'aborted');
  assert.equal(outcome.aborted.snapshot.handed_back, handedBack + outcome.aborted.handedBack.length);
  assert.equal(outcome.reopenError, 'a pool runs 1 to 4 workers, not 9');
  assertMatches(outcome.reopened, { name: 'b', words: 2 }, 'after reopen');
}));

test('from Rust: futures, a sink, back-pressure, a crash and a drain through the typed Pool', TIMEOUT, () => withApp(async (page) => {
  const result = await page.evaluate(() => window.words.rustScenario(200));
  assertMatches(result, {
    completed: 200,
    digests_match: 200,
    panicked: 'crashed: dead-lettered',
    panicked_attempts: 2,
    empty: 'failed: blank has no words',
    refused_after_drain: true,
  }, 'scenario');
  assert.ok(result.refused_full > 0, 'a burst of 40 into a queue of 16 comes back in part');
  assert.equal(result.tried_completed, 40 - result.refused_full);
  // The sink got the burst's outcomes and the first crash (retried), nothing of `submit`'s.
  assert.deepEqual(result.sink, { completed: result.tried_completed, crashed: 1 });
  const [completed, failed, deadLettered, handedBack, addsUp] = result.report;
  assert.deepEqual([completed, failed, deadLettered, handedBack, addsUp],
    [200 + result.tried_completed, 1, 1, 0, true]);
  for (const bytes of result.worker_heaps_in_use) assert.ok(bytes < 64 * 1024, `${bytes} bytes left on a worker heap`);
}));

test('workers that cannot start are started again, then given up: the pool stops and hands its tasks back', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (CATCH) => {
    const settle = eval(CATCH); // eslint-disable-line no-eval
    // A second instance of the app whose glue comes from a blob URL, revoked once loaded: its
    // threads cannot import the glue, so no worker thread can start.
    const base = new URL('./pkg/', location.href).href;
    const source = (await (await fetch(`${base}foreman_words.js`)).text())
      .replaceAll("'./snippets/", `'${base}snippets/`);
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    const glue = await import(url);
    await glue.default({ module_or_path: `${base}foreman_words_bg.wasm` });
    URL.revokeObjectURL(url);
    const pool = glue.startWords(2);
    const notices = [];
    pool.onNotice((notice) => notices.push(notice));
    const task = await settle(pool.run({ name: 'stranded', text: 'never runs' }));
    return { task, notices, snapshot: pool.snapshot(), threads: pool.threads().map((t) => t.state) };
  }, CATCH);
  assertMatches(outcome.task, { kind: 'handed-back' }, 'the task');
  assert.deepEqual(outcome.task.task, { name: 'stranded', text: 'never runs' });
  const failures = outcome.notices.filter((n) => n.problem && n.text.includes('start'));
  // Two slots, three attempts each: two retries and a final give-up per slot.
  assert.equal(failures.filter((n) => n.text.endsWith('trying again')).length, 4, JSON.stringify(failures));
  assert.equal(failures.filter((n) => n.text.includes('cannot be started') && n.text.includes('3 attempts failed')).length, 2);
  assertMatches(outcome.snapshot, { state: 'stopped', handed_back: 1, submitted: 1, adds_up: true }, 'snapshot');
  assert.deepEqual(outcome.threads, ['none', 'none', 'none', 'none']);
}));

test('pools are independent, and dropping one with a hung worker harms nothing', TIMEOUT, () => withApp(async (page) => {
  const outcome = await page.evaluate(async (CATCH) => {
    const settle = eval(CATCH); // eslint-disable-line no-eval
    const { startWords } = window.words;
    const a = startWords(2);
    const b = startWords(2);
    const hang = settle(a.run({ name: 'loop', text: '!hang' }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const fromB = await b.run({ name: 'b', text: 'pool b works' });
    a.free(); // its hanging run is pending: the pool lives until the watchdog dead-letters it
    const dropped = await hang;
    const afterDrop = await b.run({ name: 'b2', text: 'still works' });
    await b.drain();
    b.free();
    // Heaps go back when a pool is gone: far more pools than heaps, one after the other.
    let started = 0;
    for (let i = 0; i < 24; i++) {
      let pool = null;
      for (let tries = 0; !pool && tries < 100; tries++) {
        try { pool = startWords(2); } catch (error) {
          if (!String(error.message).includes('heaps are taken')) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50)); // the last pool's threads are leaving
        }
      }
      await pool.run({ name: `p${i}`, text: 'short life' });
      await pool.drain();
      pool.free();
      started++;
    }
    return { fromB: fromB.words, dropped, afterDrop: afterDrop.words, started, heap: window.words.heapStats() };
  }, CATCH);
  assert.equal(outcome.fromB, 3);
  assert.ok(['handed-back', 'dead-lettered'].includes(outcome.dropped.kind), `the dropped pool's task: ${outcome.dropped.kind}`);
  assert.equal(outcome.afterDrop, 2);
  assert.equal(outcome.started, 24);
  assert.equal(outcome.heap.zombieAllocations, 0);
}));

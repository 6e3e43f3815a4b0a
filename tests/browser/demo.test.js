// End-to-end tests of the demo page (web/, its Rust in web/demo on foreman-wasm), in the
// browser `cargo xtask test` names: real Web Workers, real traps, real terminations. Each test
// loads a fresh page (a fresh module, pool and ledger) in a fresh browser context.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertMatches, env, launch } from './browser.js';

const DEMO = env('FOREMAN_DEMO_URL');
const PLAIN = env('FOREMAN_PLAIN_URL');
const TIMEOUT = { timeout: 240_000 };

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/** Runs `body(page)` on a fresh page, and closes it whatever happens. */
async function withPage(body) {
  const page = await browser.newPage();
  try {
    await body(page);
  } finally {
    await page.close();
  }
}

/** Opens the demo with `workers` workers and waits until they are all idle. */
async function openDemo(page, workers = 2) {
  await page.goto(`${DEMO}?workers=${workers}`);
  await page.waitFor(() => window.foreman?.ready || window.foreman?.error, null, 'the demo to load', 30_000);
  assert.equal(await page.evaluate(() => window.foreman.error), null);
  await waitForView(page, (v, n) => v.threads === n && v.workers.slice(0, n).every((w) => w.state === 'idle'),
    workers, `${workers} idle workers`);
}

/** Waits (polling) until `predicate(view, arg)` holds for the page's latest view; returns it. */
async function waitForView(page, predicate, arg, what = predicate.toString(), timeout = 60_000) {
  return page.waitFor(({ source, arg }) => {
    const view = window.foreman?.view;
    // eslint-disable-next-line no-new-func
    return view && new Function('v', 'arg', `return (${source})(v, arg);`)(view, arg) ? view : null;
  }, { source: predicate.toString(), arg }, what, timeout);
}

/**
 * Waits until the ledger panel says it agrees with the supervisor. The view (the supervisor's
 * snapshot) can show a task ended a moment before its outcome reaches the page's ledger —
 * outcomes arrive in bursts — and the panel says "catching up…" meanwhile; a ledger that
 * never agrees fails the test.
 */
async function ledgerAgrees(page) {
  await page.waitFor(() => document.querySelector('[data-testid="ledger"]')?.dataset.agrees === 'true' || null,
    null, 'the ledger to agree with the supervisor', 10_000);
}

/** The counters (`data-stat` names) of the supervisor card. */
const STATS = ['submitted', 'completed', 'failed', 'dead_lettered', 'lost', 'handed_back', 'cancelled',
  'queued', 'in_flight', 'crashes', 'restarts', 'backlog'];

/** Every counter the supervisor card shows, read at one moment. */
async function shownStats(page) {
  const texts = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('[data-stat]')]
    .map((node) => [node.dataset.stat, node.textContent])));
  const stats = {};
  for (const name of STATS) {
    assert.ok(name in texts, `the page shows the counter "${name}"`);
    stats[name] = Number(texts[name].replace(/,/g, '')); // as shown: `1,234`
  }
  return stats;
}

/** The worker cards: slot, state, tasks done, restarts. */
function shownWorkers(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-testid="worker"]')].map((card) => ({
    slot: Number(card.dataset.slot),
    state: card.dataset.state,
    completed: Number(card.dataset.completed),
    restarts: Number(card.dataset.restarts),
  })));
}

/** The event log's lines, oldest first: `{ kind, text }`. */
async function shownEvents(page) {
  const items = await page.evaluate(() => [...document.querySelectorAll('#log li[data-kind]')]
    .map((line) => ({ kind: line.dataset.kind, text: line.lastElementChild.textContent })));
  return items.reverse();
}

/** How the ledger says tasks `from..=to` ended. */
function outcomes(page, from, to) {
  return page.evaluate(({ from, to }) => {
    const counts = {};
    for (let id = from; id <= to; id++) {
      const outcome = window.foreman.demo.outcome(id) ?? 'unknown';
      counts[outcome] = (counts[outcome] ?? 0) + 1;
    }
    return counts;
  }, { from, to });
}

/** Submits `count` tasks through the page's form. */
async function submitTasks(page, count) {
  await page.fill('#count', String(count));
  await page.click('#submit');
}

test('the page is cross-origin isolated and starts its workers', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 3);
  assert.equal(await page.evaluate(() => crossOriginIsolated), true);
  await page.expectText('#isolation', 'cross-origin isolated');
  assert.equal(await page.visible('#isolation-help'), false);
  await page.expectText('[data-testid="supervisor-state"]', 'running');
  const workers = await shownWorkers(page);
  assert.deepEqual(workers.filter((w) => w.state === 'idle').map((w) => w.slot), [0, 1, 2]);
  assert.deepEqual(page.errors, []);
}));

test('1,000 tasks on 2 workers all complete, both workers do some, the numbers match', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await submitTasks(page, 1000);
  const view = await waitForView(page, (v) => v.batch?.ended === 1000 && v.in_flight === 0, undefined, '1,000 tasks to end');

  const stats = await shownStats(page);
  assertMatches(stats, {
    submitted: 1000, completed: 1000, failed: 0, dead_lettered: 0, lost: 0, handed_back: 0,
    queued: 0, in_flight: 0, crashes: 0, restarts: 0, backlog: 0,
  }, 'stats');
  const workers = (await shownWorkers(page)).filter((w) => w.slot < 2);
  assert.equal(workers.length, 2);
  for (const worker of workers) assert.ok(worker.completed > 0, `worker ${worker.slot} did some`);
  assert.equal(workers[0].completed + workers[1].completed, 1000);
  // The page's numbers are the supervisor's and the ledger's.
  assert.equal(view.completed, 1000);
  assertMatches(view.ledger, { completed: 1000, pending: 0, violations: 0 }, 'ledger');
  await ledgerAgrees(page);
  await page.expectText('[data-testid="adds-up"]', '✓', { contains: true });
  assert.match(await page.text('[data-testid="batch-label"]'), /^batch #\d+$/);
  // Every one of the 1,000 tasks (ids 1–1000 on a fresh page) ended exactly once, completed.
  assert.deepEqual(await outcomes(page, 1, 1000), { completed: 1000 });
  console.log(`screenshot: ${await page.screenshot('foreman-demo')}`);
  assert.deepEqual(page.errors, []);
}));

test('a panicking task: its worker is replaced, the page shows the restart, every task is accounted for', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await submitTasks(page, 300);
  await page.click('#inject-panic');
  // At-least-once with 3 attempts: the task crashes its worker three times, then is dead-lettered.
  const view = await waitForView(page, (v) => v.dead_lettered === 1 && v.queued === 0 && v.in_flight === 0
    && v.workers.slice(0, 2).every((w) => w.state === 'idle'), undefined, 'the panicking task to be dead-lettered');

  const stats = await shownStats(page);
  assert.equal(stats.submitted, 301);
  assert.equal(stats.completed + stats.failed + stats.dead_lettered, stats.submitted);
  assertMatches(stats, { completed: 300, dead_lettered: 1, lost: 0, handed_back: 0, crashes: 3, restarts: 3 }, 'stats');
  const workers = await shownWorkers(page);
  assert.equal(workers.reduce((sum, w) => sum + w.restarts, 0), 3);
  const events = await shownEvents(page);
  assert.equal(events.filter((e) => e.kind === 'crash').length, 3);
  assert.equal(events.filter((e) => e.kind === 'restart').length, 3);
  assert.match(events.find((e) => e.kind === 'crash').text, /panicked on purpose/);
  assert.ok(events.some((e) => e.kind === 'dead-letter'));
  assertMatches(view.ledger, { completed: 300, dead_lettered: 1, pending: 0, violations: 0 }, 'ledger');
  await ledgerAgrees(page);

  // The replacements work.
  await submitTasks(page, 200);
  await waitForView(page, (v) => v.completed === 500 && v.in_flight === 0, undefined, '200 more tasks');
  await page.screenshot('foreman-panic');
  assert.deepEqual(page.errors, []);
}));

test('a hanging task that allocates is killed and replaced; the other workers keep working', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await page.click('#inject-hang');
  await waitForView(page, (v) => v.workers.some((w) => w.task?.kind === 'hanging'), undefined, 'the hanging task to start');
  // While one worker hangs, the other keeps working.
  await submitTasks(page, 200);
  await page.waitFor(() => window.foreman.events.some((e) => e.kind === 'hung'), null, 'a hung event', 30_000);
  const whileHung = await waitForView(page, (v) => v.completed >= 50, undefined, '50 tasks done while one worker hangs');
  assert.ok(whileHung.completed >= 50);

  // Killed on each of its three attempts, then dead-lettered; the replacements run the rest.
  // The ledger learns of an outcome when the page takes its event, which may come a moment
  // after the supervisor counted it: wait for both.
  const view = await waitForView(page, (v) => v.dead_lettered === 1 && v.completed === 200 && v.in_flight === 0
    && v.ledger.pending === 0, undefined, 'the hanging task to be dead-lettered', 90_000);
  const events = await shownEvents(page);
  assert.equal(events.filter((e) => e.kind === 'hung').length, 3);
  const kills = events.filter((e) => e.kind === 'kill');
  assert.equal(kills.filter((e) => e.text.includes('crashed while running')).length, 3);
  assert.equal(kills.filter((e) => e.text.includes('thread is gone')).length, 3);
  // Each killed thread's heap was either consistent (kept) or, if it died inside the
  // allocator, replaced; either way the page says which.
  const memory = events.filter((e) => e.kind === 'memory');
  assert.equal(memory.length, 3);
  for (const line of memory) assert.match(line.text, /heap was consistent|died inside the allocator/);
  assert.equal(view.after_death_violations, 0);
  assert.equal(view.restarts, 3);
  assertMatches(view.ledger, { completed: 200, dead_lettered: 1, pending: 0, violations: 0 }, 'ledger');

  // Both slots work after the replacements.
  const before = await shownWorkers(page);
  await submitTasks(page, 400);
  await waitForView(page, (v) => v.completed === 600 && v.in_flight === 0, undefined, '400 more tasks');
  const later = await shownWorkers(page);
  for (const slot of [0, 1]) {
    assert.ok(later[slot].completed > before[slot].completed, `worker ${slot} works after the kills`);
  }
  await page.screenshot('foreman-hang');
  console.log(`memory events: ${memory.map((e) => e.text).join(' | ')}`);
  console.log(`kill events: ${kills.map((e) => e.text).filter((t) => t.includes('gone')).join(' | ')}`);
  assert.deepEqual(page.errors, []);
}));

test('a slow task that sends heartbeats is not hung, even while the page stalls', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await page.click('#inject-slow');
  await waitForView(page, (v) => v.workers.some((w) => w.task?.kind === 'slow'), undefined, 'the slow task to start');
  // Block the page's main thread for longer than the watchdog's deadline while the slow task
  // runs (as a long frame, or a hidden tab's throttled timers, would): the clock and the
  // watchdog run on a thread of their own, so its heartbeats keep it alive.
  await page.evaluate(() => {
    const end = performance.now() + 2000;
    while (performance.now() < end) { /* a long task on the page's thread */ }
  });
  await submitTasks(page, 300);
  const view = await waitForView(page, (v) => v.completed === 301 && v.in_flight === 0, undefined, '301 tasks');
  assertMatches(view, { crashes: 0, restarts: 0, dead_lettered: 0 }, 'view');
  const events = await page.evaluate(() => window.foreman.events.map((e) => ({ kind: e.kind, text: e.text })));
  assert.deepEqual(events.filter((e) => ['hung', 'kill', 'clock'].includes(e.kind)), []);
  assert.ok(events.some((e) => e.kind === 'completed' && e.text.includes('(slow) completed')));
  assert.deepEqual(page.errors, []);
}));

test('too many crashes escalate: the supervisor stops, every task is accounted for, start again works', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  // Three tasks that crash on each of their three attempts: nine crashes, one more than the
  // restart intensity allows within its window; then rows, queued behind them. Through the
  // page's API in one go: the nine crashes take less time than a few clicks, and the buttons
  // are disabled once the supervisor stopped.
  await page.evaluate(() => {
    const demo = window.foreman.demo;
    for (let i = 0; i < 3; i++) demo.inject('panic');
    demo.submit(1000);
  });
  const view = await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0, undefined, 'the escalation to stop the pool');
  assert.equal(view.shutdown, 'escalation');
  await page.expectText('[data-testid="supervisor-state"]', 'stopped (escalation)');
  // The stop is logged once every thread is gone.
  await page.waitFor(() => window.foreman.events.some((e) => e.kind === 'stop'), null, 'the stop event', 10_000);
  const events = await shownEvents(page);
  assert.equal(events.filter((e) => e.kind === 'escalation').length, 1);
  assert.match(events.find((e) => e.kind === 'escalation').text, /more than 8 restarts within 10 s/);
  const stats = await shownStats(page);
  assert.equal(stats.crashes, 9);
  assert.ok(stats.handed_back > 0);
  assert.ok(events.some((e) => e.kind === 'stop' && e.text.includes(`${stats.handed_back} tasks were handed back`)),
    `a stop event names ${stats.handed_back} tasks handed back`);
  assert.equal(stats.completed + stats.failed + stats.dead_lettered + stats.lost + stats.handed_back, stats.submitted);
  assertMatches(stats, { queued: 0, in_flight: 0 }, 'stats');
  const settled = await waitForView(page, (v) => v.ledger.pending === 0, undefined, 'the ledger to settle', 10_000);
  assertMatches(settled.ledger, { pending: 0, violations: 0, handed_back: stats.handed_back }, 'ledger');
  await ledgerAgrees(page);
  await page.screenshot('foreman-escalation');

  await page.click('#start');
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2, undefined, 'the pool to run again');
  await submitTasks(page, 50);
  await waitForView(page, (v, done) => v.completed === done + 50 && v.in_flight === 0, stats.completed, '50 tasks after the restart');
  assert.deepEqual(page.errors, []);
}));

test('drain finishes what was queued, then stops; start again works', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await submitTasks(page, 3000);
  await page.click('#drain');
  const view = await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0, undefined, 'the drain to stop the pool');
  assert.equal(view.shutdown, 'drain');
  const stats = await shownStats(page);
  assert.ok(stats.submitted > 0);
  assertMatches(stats, { completed: stats.submitted, handed_back: 0, queued: 0, in_flight: 0, backlog: 0 }, 'stats');
  const events = await shownEvents(page);
  const cancelled = 3000 - stats.submitted;
  if (cancelled > 0) {
    assert.ok(events.some((e) => e.kind === 'cancel' && e.text.startsWith(`${cancelled} requested tasks were never submitted`)));
  }
  await page.expectText('[data-testid="supervisor-state"]', 'stopped (drain)');

  await page.expectText('#start', 'Start again');
  await page.click('#start');
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2, undefined, 'the pool to run again');
  await submitTasks(page, 50);
  await waitForView(page, (v, done) => v.completed === done + 50, stats.completed, '50 tasks after the restart');
  assert.deepEqual(page.errors, []);
}));

test('abort hands the queued tasks back and stops; nothing is lost', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await submitTasks(page, 3000);
  await waitForView(page, (v) => v.completed > 20, undefined, '20 tasks done');
  await page.click('#abort');
  const view = await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0, undefined, 'the abort to stop the pool');
  assert.equal(view.shutdown, 'abort');
  const stats = await shownStats(page);
  assert.ok(stats.handed_back > 0);
  assert.equal(stats.completed + stats.handed_back, stats.submitted);
  assertMatches(stats, { queued: 0, in_flight: 0, lost: 0 }, 'stats');
  await page.waitFor(() => window.foreman.events.some((e) => e.kind === 'stop'), null, 'the stop event', 10_000);
  const settled = await waitForView(page, (v) => v.ledger.pending === 0, undefined, 'the ledger to settle', 10_000);
  assertMatches(settled.ledger, { handed_back: stats.handed_back, completed: stats.completed, pending: 0, violations: 0 }, 'ledger');
  const events = await shownEvents(page);
  assert.ok(events.some((e) => e.kind === 'stop' && e.text.includes(`${stats.handed_back} tasks were handed back`)));
  await page.expectText('[data-testid="supervisor-state"]', 'stopped (abort)');
  await page.click('#start');
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2, undefined, 'the pool to run again');
  assert.deepEqual(page.errors, []);
}));

test('bad input gets a clear message, and nothing happens', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  const message = '[data-testid="message"]';
  await page.fill('#count', '2.5');
  await page.click('#submit');
  await page.expectText(message, 'Tasks: "2.5" is not a whole number (use 1 to 100000)');
  assert.equal(await page.attribute('#count', 'aria-invalid'), 'true');
  await page.fill('#count', '');
  await page.click('#submit');
  await page.expectText(message, 'Tasks: enter a number from 1 to 100000');
  await page.fill('#count', '100001');
  await page.click('#submit');
  await page.expectText(message, 'Tasks: 100001 is out of range (use 1 to 100000)');
  assert.equal((await shownStats(page)).submitted, 0);

  await page.click('#abort');
  await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0, undefined, 'the abort to stop the pool');
  await page.fill('#workers', '9');
  await page.click('#start');
  await page.expectText(message, 'Workers: 9 is out of range (use 1 to 8)');
  await page.fill('#workers', '0');
  await page.click('#start');
  await page.expectText(message, 'Workers: 0 is out of range (use 1 to 8)');
  // The wasm side checks too, with its own words.
  const refused = await page.evaluate(() => {
    try { window.foreman.demo.inject('hang'); return null; } catch (error) { return error.message; }
  });
  assert.equal(refused, 'the supervisor has stopped: press Start again first');
  const unknown = await page.evaluate(() => {
    try { window.foreman.demo.inject('explode'); return null; } catch (error) { return error.message; }
  });
  assert.equal(unknown, 'unknown task kind "explode": use "fail", "panic", "hang" or "slow"');
  const twice = await page.evaluate(() => {
    try { window.foreman.demo.abort(); return null; } catch (error) { return error.message; }
  });
  assert.equal(twice, 'the supervisor has already stopped: nothing to abort');
  assert.deepEqual(page.errors, []);
}));

test('a failing task is an outcome, not a crash', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await page.click('#inject-fail');
  const view = await waitForView(page, (v) => v.failed === 1 && v.in_flight === 0, undefined, 'the failing task');
  assertMatches(view, { crashes: 0, restarts: 0, completed: 0 }, 'view');
  await page.waitFor(() => window.foreman.events.some((e) => e.kind === 'failed'), null, 'the failed event', 10_000);
  const events = await shownEvents(page);
  assert.ok(events.some((e) => e.kind === 'failed' && e.text.includes('returned an error')));
  assert.deepEqual(page.errors, []);
}));

test('the benchmark panel shows foreman and rayon timings', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await page.click('#bench');
  await page.waitFor(() => window.foreman.benchmark, null, 'the benchmark', 200_000);
  const results = await page.evaluate(() => window.foreman.benchmark);
  assert.equal(results.error, undefined, `the benchmark ran to the end: ${results.error}`);
  const threads = await page.evaluate(() => Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 8)));
  assert.deepEqual(results.filter((r) => r.runner === 'foreman').map((r) => r.threads),
    Array.from({ length: threads }, (_, i) => i + 1));
  assert.deepEqual(results.filter((r) => r.runner === 'rayon').map((r) => r.threads), [threads]);
  for (const result of results) assert.ok(result.ms > 0);
  assert.equal(await page.evaluate(() => document.querySelectorAll('[data-testid="bench-table"] tbody tr').length), threads + 1);
  assert.equal(await page.attribute('[data-testid="bench-table"] tbody tr:last-child', 'data-runner'), 'rayon');
  await page.expectText('[data-testid="bench-status"]', 'done', { contains: true });
  // Back to the workers the page had before the benchmark.
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2, undefined, 'the pool to run again');
  const one = results.find((r) => r.runner === 'foreman' && r.threads === 1);
  const rayon = results.find((r) => r.runner === 'rayon');
  const same = results.find((r) => r.runner === 'foreman' && r.threads === rayon.threads);
  const two = results.find((r) => r.runner === 'foreman' && r.threads === 2);
  console.log(`benchmark: ${results.map((r) => `${r.runner}×${r.threads} ${r.ms.toFixed(1)} ms [${r.runs.map((ms) => ms.toFixed(0)).join(', ')}]`).join('; ')}`);
  if (two) console.log(`speed-up of 2 workers over 1: ${(one.ms / two.ms).toFixed(2)}`);
  console.log(`foreman/rayon time ratio at ${rayon.threads} threads: ${(same.ms / rayon.ms).toFixed(2)}`);
  await page.screenshot('foreman-benchmark');
  assert.deepEqual(page.errors, []);
}));

test('a timed benchmark run pauses the drawing of the page, for foreman and rayon alike, and it resumes after', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await page.evaluate(() => window.foreman.bench.prepare(2));
  for (const runner of ['foreman', 'rayon']) {
    const seen = await page.evaluate(async (runner) => {
      const frame = () => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
      await frame();
      const before = window.foreman.view;
      // Counts the frames that pass while the run is timed (a run takes hundreds of ms).
      let frames = 0;
      let counting = true;
      const count = () => {
        if (!counting) return;
        frames += 1;
        requestAnimationFrame(count);
      };
      requestAnimationFrame(count);
      const ms = await window.foreman.bench.run(runner);
      // Read as the run resolves: no frame can run between its end and this line.
      const atEnd = window.foreman.view;
      counting = false;
      await frame();
      return { frames, paused: atEnd === before, resumed: window.foreman.view !== atEnd, ms };
    }, runner);
    assert.ok(seen.ms > 0, `${runner}: timed`);
    assert.ok(seen.frames >= 3, `${runner}: only ${seen.frames} frames passed during the run (${seen.ms} ms): nothing to check`);
    assert.ok(seen.paused, `${runner}: the page drew its view while the run was timed (${seen.frames} frames passed)`);
    assert.ok(seen.resumed, `${runner}: the page did not draw again after the run`);
  }
  // What the foreman run did is on the page once it draws again.
  await waitForView(page, (v) => v.completed >= 400 && v.queued + v.in_flight === 0, undefined, 'the rows of the benchmark counted');
  assert.deepEqual(page.errors, []);
}));

test('without cross-origin isolation the page says so and names the two headers', TIMEOUT, () => withPage(async (page) => {
  // The same files, served without the isolation headers.
  await page.goto(PLAIN);
  await page.waitFor(() => !document.querySelector('#isolation-help')?.hidden, null, 'the isolation help', 30_000);
  assert.equal(await page.visible('#isolation-help'), true);
  const help = await page.text('#isolation-help');
  assert.ok(help.includes('Cross-Origin-Opener-Policy: same-origin'));
  assert.ok(help.includes('Cross-Origin-Embedder-Policy: require-corp'));
  await page.expectText('#isolation', 'not cross-origin isolated');
  assert.equal(await page.evaluate(() => crossOriginIsolated), false);
  await page.screenshot('foreman-not-isolated');
}));

test('Cancel on a running injected task: its worker is replaced, the log and the ledger say cancelled', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 2);
  await page.click('#inject-slow');
  await waitForView(page, (v) => v.workers.some((w) => w.task?.kind === 'slow'), undefined, 'the slow task to start');
  await page.waitFor(() => [...document.querySelectorAll('button.cancel')].some((b) => !b.hidden), null, 'a Cancel button', 10_000);
  await page.screenshot('foreman-cancel-button');
  await page.click('button.cancel:not([hidden])');
  const view = await waitForView(page, (v) => v.ledger.cancelled === 1 && v.threads === 2
    && v.workers.slice(0, 2).every((w) => w.state === 'idle'), undefined, 'the cancelled task and a fresh worker');
  assertMatches(view, { cancelled: 1, dead_lettered: 0 }, 'view');
  const events = await shownEvents(page);
  assert.ok(events.some((e) => e.kind === 'cancel' && /ended cancelled while it ran on worker \d, which was replaced/.test(e.text)),
    JSON.stringify(events));
  assert.deepEqual(events.filter((e) => e.kind === 'crash' || e.kind === 'hung'), [], 'a cancellation is not a crash');
  await submitTasks(page, 100);
  await waitForView(page, (v) => v.completed === 100 && v.in_flight === 0, undefined, '100 tasks after the cancellation');
  await ledgerAgrees(page);
  const stats = await shownStats(page);
  assertMatches(stats, { submitted: 101, completed: 100, cancelled: 1 }, 'the supervisor card shows the cancelled task');
  await page.screenshot('foreman-cancel');
  assert.deepEqual(page.errors, []);
}));

test('recycled workers appear in the event log: each worker thread is replaced after its quota of tasks', TIMEOUT, () => withPage(async (page) => {
  await openDemo(page, 1);
  const policy = await page.text('#policy');
  assert.match(policy, /recycle after 1000 tasks/);
  await submitTasks(page, 2100);
  const view = await waitForView(page, (v) => v.completed === 2100 && v.in_flight === 0, undefined, '2100 tasks', 120_000);
  assertMatches(view, { crashes: 0, dead_lettered: 0 }, 'view');
  const recycled = (await shownEvents(page)).filter((e) => e.kind === 'recycle');
  assert.equal(recycled.length, 2, JSON.stringify(recycled));
  assert.match(recycled[0].text, /worker 0 ran 1000 tasks: its Web Worker is retired and a fresh one takes over/);
  await ledgerAgrees(page);
  await page.screenshot('foreman-recycle');
  assert.deepEqual(page.errors, []);
}));

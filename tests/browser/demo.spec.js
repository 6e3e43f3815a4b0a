// End-to-end tests of the demo page in headless Chromium: real Web Workers, real traps, real
// terminations. Each test loads a fresh page (a fresh module, supervisor and ledger).
import { test, expect } from '@playwright/test';
import {
  openDemo, waitForView, shownStats, shownWorkers, shownEvents, outcomes, screenshot, submitTasks,
} from './helpers.js';

test('the page is cross-origin isolated and starts its workers', async ({ page }) => {
  const errors = await openDemo(page, 3);
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
  await expect(page.locator('#isolation')).toHaveText('cross-origin isolated');
  await expect(page.locator('#isolation-help')).toBeHidden();
  await expect(page.locator('[data-testid="supervisor-state"]')).toHaveText('running');
  const workers = await shownWorkers(page);
  expect(workers.filter((w) => w.state === 'idle').map((w) => w.slot)).toEqual([0, 1, 2]);
  expect(errors).toEqual([]);
});

test('1,000 tasks on 2 workers all complete, both workers do some, the numbers match', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await submitTasks(page, 1000);
  const view = await waitForView(page, (v) => v.batch?.ended === 1000 && v.in_flight === 0);

  const stats = await shownStats(page);
  expect(stats).toMatchObject({
    submitted: 1000, completed: 1000, failed: 0, dead_lettered: 0, lost: 0, handed_back: 0,
    queued: 0, in_flight: 0, crashes: 0, restarts: 0, backlog: 0,
  });
  const workers = (await shownWorkers(page)).filter((w) => w.slot < 2);
  expect(workers).toHaveLength(2);
  for (const worker of workers) expect(worker.completed, `worker ${worker.slot} did some`).toBeGreaterThan(0);
  expect(workers[0].completed + workers[1].completed).toBe(1000);
  // The page's numbers are the supervisor's and the ledger's.
  expect(view.completed).toBe(1000);
  expect(view.ledger).toMatchObject({ completed: 1000, pending: 0, violations: 0 });
  await expect(page.locator('[data-testid="ledger"]')).toHaveAttribute('data-agrees', 'true');
  await expect(page.locator('[data-testid="adds-up"]')).toContainText('✓');
  await expect(page.locator('[data-testid="batch-label"]')).toHaveText(/^batch #\d+$/);
  // Every one of the 1,000 tasks (ids 1–1000 on a fresh page) ended exactly once, completed.
  expect(await outcomes(page, 1, 1000)).toEqual({ completed: 1000 });

  const path = await screenshot(page, 'foreman-demo');
  console.log(`screenshot: ${path}`);
  expect(errors).toEqual([]);
});

test('a panicking task: its worker is replaced, the page shows the restart, every task is accounted for', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await submitTasks(page, 300);
  await page.click('#inject-panic');
  // At-least-once with 3 attempts: the task crashes its worker three times, then is dead-lettered.
  const view = await waitForView(page, (v) => v.dead_lettered === 1 && v.queued === 0 && v.in_flight === 0
    && v.workers.slice(0, 2).every((w) => w.state === 'idle'));

  const stats = await shownStats(page);
  expect(stats.submitted).toBe(301);
  expect(stats.completed + stats.failed + stats.dead_lettered).toBe(stats.submitted);
  expect(stats).toMatchObject({ completed: 300, dead_lettered: 1, lost: 0, handed_back: 0, crashes: 3, restarts: 3 });
  const workers = await shownWorkers(page);
  expect(workers.reduce((sum, w) => sum + w.restarts, 0)).toBe(3);
  const events = await shownEvents(page);
  expect(events.filter((e) => e.kind === 'crash')).toHaveLength(3);
  expect(events.filter((e) => e.kind === 'restart')).toHaveLength(3);
  expect(events.find((e) => e.kind === 'crash').text).toContain('panicked on purpose');
  expect(events.some((e) => e.kind === 'dead-letter')).toBe(true);
  expect(view.ledger).toMatchObject({ completed: 300, dead_lettered: 1, pending: 0, violations: 0 });
  await expect(page.locator('[data-testid="ledger"]')).toHaveAttribute('data-agrees', 'true');

  // The replacements work.
  await submitTasks(page, 200);
  await waitForView(page, (v) => v.completed === 500 && v.in_flight === 0);
  await screenshot(page, 'foreman-panic');
  expect(errors).toEqual([]);
});

test('a hanging task that allocates is killed and replaced; the other workers keep working', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await page.click('#inject-hang');
  await waitForView(page, (v) => v.workers.some((w) => w.task?.kind === 'hanging'));
  // While one worker hangs, the other keeps working.
  await submitTasks(page, 200);
  await page.waitForFunction(() => window.foreman.events.some((e) => e.kind === 'hung'), null, { timeout: 30_000 });
  const whileHung = await waitForView(page, (v) => v.completed >= 50);
  expect(whileHung.completed).toBeGreaterThanOrEqual(50);

  // Killed on each of its three attempts, then dead-lettered; the replacements run the rest.
  const view = await waitForView(page, (v) => v.dead_lettered === 1 && v.completed === 200 && v.in_flight === 0,
    undefined, 90_000);
  const events = await shownEvents(page);
  expect(events.filter((e) => e.kind === 'hung')).toHaveLength(3);
  const kills = events.filter((e) => e.kind === 'kill');
  expect(kills.filter((e) => e.text.includes('crashed while running'))).toHaveLength(3);
  expect(kills.filter((e) => e.text.includes("thread is gone"))).toHaveLength(3);
  // Each killed thread's heap was either consistent (kept) or, if it died inside the
  // allocator, replaced; either way the page says which.
  const memory = events.filter((e) => e.kind === 'memory');
  expect(memory).toHaveLength(3);
  for (const line of memory) expect(line.text).toMatch(/heap was consistent|died inside the allocator/);
  expect(view.after_death_violations).toBe(0);
  expect(view.restarts).toBe(3);
  expect(view.ledger).toMatchObject({ completed: 200, dead_lettered: 1, pending: 0, violations: 0 });

  // Both slots work after the replacements.
  const before = await shownWorkers(page);
  await submitTasks(page, 400);
  await waitForView(page, (v) => v.completed === 600 && v.in_flight === 0);
  const after = await shownWorkers(page);
  for (const slot of [0, 1]) {
    expect(after[slot].completed, `worker ${slot} works after the kills`).toBeGreaterThan(before[slot].completed);
  }
  await screenshot(page, 'foreman-hang');
  console.log(`memory events: ${memory.map((e) => e.text).join(' | ')}`);
  expect(errors).toEqual([]);
});

test('a slow task that sends heartbeats is not hung, even while the page stalls', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await page.click('#inject-slow');
  await waitForView(page, (v) => v.workers.some((w) => w.task?.kind === 'slow'));
  // Block the page's main thread for longer than the watchdog's deadline while the slow task
  // runs (as a long frame, or a hidden tab's throttled timers, would): the clock and the
  // watchdog run on a thread of their own, so its heartbeats keep it alive.
  await page.evaluate(() => {
    const end = performance.now() + 2000;
    while (performance.now() < end) { /* a long task on the page's thread */ }
  });
  await submitTasks(page, 300);
  const view = await waitForView(page, (v) => v.completed === 301 && v.in_flight === 0);
  expect(view).toMatchObject({ crashes: 0, restarts: 0, dead_lettered: 0 });
  const events = await page.evaluate(() => window.foreman.events.map((e) => ({ kind: e.kind, text: e.text })));
  expect(events.filter((e) => ['hung', 'kill', 'clock'].includes(e.kind))).toEqual([]);
  expect(events.some((e) => e.kind === 'completed' && e.text.includes('(slow) completed'))).toBe(true);
  expect(errors).toEqual([]);
});

test('too many crashes escalate: the supervisor stops, every task is accounted for, start again works', async ({ page }) => {
  const errors = await openDemo(page, 2);
  // Three tasks that crash on each of their three attempts: nine crashes, one more than the
  // restart intensity allows within its window; then rows, queued behind them. Through the
  // page's API in one go: the nine crashes take less time than a few clicks, and the buttons
  // are disabled once the supervisor stopped.
  await page.evaluate(() => {
    const demo = window.foreman.demo;
    for (let i = 0; i < 3; i++) demo.inject('panic');
    demo.submit(1000);
  });
  const view = await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0);
  expect(view.shutdown).toBe('escalation');
  await expect(page.locator('[data-testid="supervisor-state"]')).toHaveText('stopped (escalation)');
  const events = await shownEvents(page);
  expect(events.filter((e) => e.kind === 'escalation')).toHaveLength(1);
  expect(events.find((e) => e.kind === 'escalation').text).toContain('more than 8 restarts within 10 s');
  const stats = await shownStats(page);
  expect(stats.crashes).toBe(9);
  expect(stats.handed_back).toBeGreaterThan(0);
  expect(stats.completed + stats.failed + stats.dead_lettered + stats.lost + stats.handed_back).toBe(stats.submitted);
  expect(stats).toMatchObject({ queued: 0, in_flight: 0 });
  expect(view.ledger).toMatchObject({ pending: 0, violations: 0, handed_back: stats.handed_back });
  await expect(page.locator('[data-testid="ledger"]')).toHaveAttribute('data-agrees', 'true');
  await screenshot(page, 'foreman-escalation');

  await page.click('#start');
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2);
  await submitTasks(page, 50);
  await waitForView(page, (v, done) => v.completed === done + 50 && v.in_flight === 0, stats.completed);
  expect(errors).toEqual([]);
});

test('drain finishes what was queued, then stops; start again works', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await submitTasks(page, 3000);
  await page.click('#drain');
  const view = await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0);
  expect(view.shutdown).toBe('drain');
  const stats = await shownStats(page);
  expect(stats.submitted).toBeGreaterThan(0);
  expect(stats).toMatchObject({ completed: stats.submitted, handed_back: 0, queued: 0, in_flight: 0, backlog: 0 });
  const events = await shownEvents(page);
  const cancelled = 3000 - stats.submitted;
  if (cancelled > 0) {
    expect(events.some((e) => e.kind === 'cancel' && e.text.startsWith(`${cancelled} requested tasks were never submitted`))).toBe(true);
  }
  await expect(page.locator('[data-testid="supervisor-state"]')).toHaveText('stopped (drain)');

  await expect(page.locator('#start')).toHaveText('Start again');
  await page.click('#start');
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2);
  await submitTasks(page, 50);
  await waitForView(page, (v, done) => v.completed === done + 50, stats.completed);
  expect(errors).toEqual([]);
});

test('abort hands the queued tasks back and stops; nothing is lost', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await submitTasks(page, 3000);
  await waitForView(page, (v) => v.completed > 20);
  await page.click('#abort');
  const view = await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0);
  expect(view.shutdown).toBe('abort');
  const stats = await shownStats(page);
  expect(stats.handed_back).toBeGreaterThan(0);
  expect(stats.completed + stats.handed_back).toBe(stats.submitted);
  expect(stats).toMatchObject({ queued: 0, in_flight: 0, lost: 0 });
  expect(view.ledger).toMatchObject({ handed_back: stats.handed_back, completed: stats.completed, pending: 0, violations: 0 });
  const events = await shownEvents(page);
  expect(events.some((e) => e.kind === 'stop' && e.text.includes(`${stats.handed_back} tasks were handed back`))).toBe(true);
  await expect(page.locator('[data-testid="supervisor-state"]')).toHaveText('stopped (abort)');
  await page.click('#start');
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2);
  expect(errors).toEqual([]);
});

test('bad input gets a clear message, and nothing happens', async ({ page }) => {
  const errors = await openDemo(page, 2);
  const message = page.locator('[data-testid="message"]');
  await page.fill('#count', '2.5');
  await page.click('#submit');
  await expect(message).toHaveText('Tasks: "2.5" is not a whole number (use 1 to 100000)');
  await expect(page.locator('#count')).toHaveAttribute('aria-invalid', 'true');
  await page.fill('#count', '');
  await page.click('#submit');
  await expect(message).toHaveText('Tasks: enter a number from 1 to 100000');
  await page.fill('#count', '100001');
  await page.click('#submit');
  await expect(message).toHaveText('Tasks: 100001 is out of range (use 1 to 100000)');
  expect((await shownStats(page)).submitted).toBe(0);

  await page.click('#abort');
  await waitForView(page, (v) => v.state === 'stopped' && v.threads === 0);
  await page.fill('#workers', '9');
  await page.click('#start');
  await expect(message).toHaveText('Workers: 9 is out of range (use 1 to 8)');
  await page.fill('#workers', '0');
  await page.click('#start');
  await expect(message).toHaveText('Workers: 0 is out of range (use 1 to 8)');
  // The wasm side checks too, with its own words.
  const refused = await page.evaluate(() => {
    try { window.foreman.demo.inject('hang'); return null; } catch (error) { return error.message; }
  });
  expect(refused).toBe('the supervisor has stopped: press Start again first');
  const unknown = await page.evaluate(() => {
    try { window.foreman.demo.inject('explode'); return null; } catch (error) { return error.message; }
  });
  expect(unknown).toBe('unknown task kind "explode": use "fail", "panic", "hang" or "slow"');
  expect(errors).toEqual([]);
});

test('a failing task is an outcome, not a crash', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await page.click('#inject-fail');
  const view = await waitForView(page, (v) => v.failed === 1 && v.in_flight === 0);
  expect(view).toMatchObject({ crashes: 0, restarts: 0, completed: 0 });
  const events = await shownEvents(page);
  expect(events.some((e) => e.kind === 'failed' && e.text.includes('returned an error'))).toBe(true);
  expect(errors).toEqual([]);
});

test('the benchmark panel shows foreman and rayon timings', async ({ page }) => {
  const errors = await openDemo(page, 2);
  await page.click('#bench');
  await page.waitForFunction(() => window.foreman.benchmark, null, { timeout: 240_000 });
  const results = await page.evaluate(() => window.foreman.benchmark);
  expect(results.error, 'the benchmark ran to the end').toBeUndefined();
  const threads = await page.evaluate(() => Math.max(1, Math.min(navigator.hardwareConcurrency || 2, 8)));
  expect(results.filter((r) => r.runner === 'foreman').map((r) => r.threads))
    .toEqual(Array.from({ length: threads }, (_, i) => i + 1));
  expect(results.filter((r) => r.runner === 'rayon').map((r) => r.threads)).toEqual([threads]);
  for (const result of results) expect(result.ms).toBeGreaterThan(0);
  const rows = page.locator('[data-testid="bench-table"] tbody tr');
  await expect(rows).toHaveCount(threads + 1);
  await expect(rows.last()).toHaveAttribute('data-runner', 'rayon');
  await expect(page.locator('[data-testid="bench-status"]')).toContainText('done');
  // Back to the workers the page had before the benchmark.
  await waitForView(page, (v) => v.state === 'running' && v.threads === 2);
  const one = results.find((r) => r.runner === 'foreman' && r.threads === 1);
  const rayon = results.find((r) => r.runner === 'rayon');
  const same = results.find((r) => r.runner === 'foreman' && r.threads === rayon.threads);
  const two = results.find((r) => r.runner === 'foreman' && r.threads === 2);
  console.log(`benchmark: ${results.map((r) => `${r.runner}×${r.threads} ${r.ms.toFixed(1)} ms [${r.runs.map((ms) => ms.toFixed(0)).join(', ')}]`).join('; ')}`);
  if (two) console.log(`speed-up of 2 workers over 1: ${(one.ms / two.ms).toFixed(2)}`);
  console.log(`foreman/rayon time ratio at ${rayon.threads} threads: ${(same.ms / rayon.ms).toFixed(2)}`);
  await screenshot(page, 'foreman-benchmark');
  expect(errors).toEqual([]);
});

test('without cross-origin isolation the page says so and names the two headers', async ({ page }) => {
  // Serve the same files without the isolation headers.
  await page.route('**/*', async (route) => {
    const response = await route.fetch();
    const headers = { ...response.headers() };
    delete headers['cross-origin-opener-policy'];
    delete headers['cross-origin-embedder-policy'];
    await route.fulfill({ response, headers });
  });
  await page.goto('/');
  const help = page.locator('#isolation-help');
  await expect(help).toBeVisible();
  await expect(help).toContainText('Cross-Origin-Opener-Policy: same-origin');
  await expect(help).toContainText('Cross-Origin-Embedder-Policy: require-corp');
  await expect(page.locator('#isolation')).toHaveText('not cross-origin isolated');
  expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
  await screenshot(page, 'foreman-not-isolated');
});

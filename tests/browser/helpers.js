// Helpers for the end-to-end tests: open the demo, read what the page shows, wait for it.
import { expect } from '@playwright/test';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** Where screenshots go (`target/screenshots/` when run by `cargo xtask test`). */
export const SCREENSHOTS = process.env.FOREMAN_SCREENSHOTS ?? 'screenshots';

/** Opens the demo with `workers` workers and waits until they are all idle. */
export async function openDemo(page, workers = 2) {
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`/?workers=${workers}`);
  await page.waitForFunction(() => window.foreman?.ready || window.foreman?.error, null, { timeout: 30_000 });
  expect(await page.evaluate(() => window.foreman.error)).toBeNull();
  await waitForView(page, (v, n) => v.threads === n && v.workers.slice(0, n).every((w) => w.state === 'idle'), workers);
  return errors;
}

/** Waits (polling every frame) until `predicate(view, arg)` holds for the page's latest view. */
export async function waitForView(page, predicate, arg, timeout = 60_000) {
  await page.waitForFunction(
    ({ source, arg }) => {
      const view = window.foreman?.view;
      // eslint-disable-next-line no-new-func
      return view && new Function('v', 'arg', `return (${source})(v, arg);`)(view, arg);
    },
    { source: predicate.toString(), arg },
    { timeout, polling: 'raf' },
  );
  return page.evaluate(() => window.foreman.view);
}

/** The counters (`data-stat` names) of the supervisor card that `shownStats` reads. */
const STATS = ['submitted', 'completed', 'failed', 'dead_lettered', 'lost', 'handed_back', 'queued',
  'in_flight', 'crashes', 'restarts', 'backlog'];

/** Every counter the supervisor card shows, read at one moment. */
export async function shownStats(page) {
  const texts = await page.locator('[data-stat]').evaluateAll((nodes) =>
    Object.fromEntries(nodes.map((node) => [node.dataset.stat, node.textContent])));
  const stats = {};
  for (const name of STATS) {
    expect(texts, `the page shows the counter "${name}"`).toHaveProperty(name);
    stats[name] = Number(texts[name].replace(/,/g, '')); // as shown: `1,234`
  }
  return stats;
}

/** The worker cards: slot, state, tasks done, restarts. */
export async function shownWorkers(page) {
  return page.locator('[data-testid="worker"]').evaluateAll((cards) => cards.map((card) => ({
    slot: Number(card.dataset.slot),
    state: card.dataset.state,
    completed: Number(card.dataset.completed),
    restarts: Number(card.dataset.restarts),
  })));
}

/** The event log's lines, oldest first: `{ kind, text }`. */
export async function shownEvents(page) {
  const items = await page.locator('#log li[data-kind]').evaluateAll((lines) =>
    lines.map((line) => ({ kind: line.dataset.kind, text: line.lastElementChild.textContent })));
  return items.reverse();
}

/** How the ledger says tasks `from..=to` ended. */
export async function outcomes(page, from, to) {
  return page.evaluate(({ from, to }) => {
    const counts = {};
    for (let id = from; id <= to; id++) {
      const outcome = window.foreman.demo.outcome(id) ?? 'unknown';
      counts[outcome] = (counts[outcome] ?? 0) + 1;
    }
    return counts;
  }, { from, to });
}

/** Saves a full-page screenshot as `SCREENSHOTS/name.png`. */
export async function screenshot(page, name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Submits `count` tasks through the page's form. */
export async function submitTasks(page, count) {
  await page.fill('#count', String(count));
  await page.click('#submit');
}

// The example app's page (wasm/examples/words) for the end-to-end tests that drive it
// (words.test.js, features.test.js).
import assert from 'node:assert/strict';
import { env } from './browser.js';

export const WORDS = env('FOREMAN_WORDS_URL');

/**
 * Runs `body(page)` on a fresh page of `browser` with the app loaded, checks the page threw
 * nothing, and closes it whatever happens.
 */
export async function withApp(browser, body) {
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

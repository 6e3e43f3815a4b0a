// One small driver for both browsers the end-to-end tests run in: Chromium through
// playwright-core, Firefox ESR through puppeteer-core (WebDriver BiDi). The tests only use
// what is here, so every test runs the same way in both.
//
// `cargo xtask test` sets the environment: FOREMAN_BROWSER (chromium | firefox),
// FOREMAN_BROWSER_PATH, the URLs of the pages it serves, and where screenshots go.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

/** The environment variable `name`, which `cargo xtask test` sets. */
export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests with \`cargo xtask test --only browser\``);
  return value;
}

export const BROWSER = env('FOREMAN_BROWSER');
const EXECUTABLE = env('FOREMAN_BROWSER_PATH');
const SCREENSHOTS = process.env.FOREMAN_SCREENSHOTS ?? 'screenshots';
const VIEWPORT = { width: 1440, height: 1300 };

/** A resolved promise after `ms` milliseconds. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts the browser. A browser that cannot start fails the run: there is no skipping.
 * Returns `{ newPage(), close() }`; each page lives in a fresh browser context.
 */
export async function launch() {
  if (BROWSER === 'chromium') {
    const { chromium } = await import('playwright-core');
    const args = (process.env.FOREMAN_CHROMIUM_ARGS ?? '--headless --no-sandbox').split(' ');
    const browser = await chromium.launch({ executablePath: EXECUTABLE, args, timeout: 60_000 });
    return {
      async newPage() {
        const context = await browser.newContext({ viewport: VIEWPORT });
        return new Page(await context.newPage(), () => context.close());
      },
      close: () => browser.close(),
    };
  }
  if (BROWSER === 'firefox') {
    const { default: puppeteer } = await import('puppeteer-core');
    const browser = await puppeteer.launch({
      browser: 'firefox',
      executablePath: EXECUTABLE,
      headless: true,
      timeout: 60_000,
      protocolTimeout: 240_000,
    });
    return {
      async newPage() {
        const context = await browser.createBrowserContext();
        const page = await context.newPage();
        await page.setViewport(VIEWPORT);
        return new Page(page, () => context.close(), { puppeteer: true });
      },
      close: () => browser.close(),
    };
  }
  throw new Error(`unknown browser "${BROWSER}": use chromium or firefox`);
}

/** A page, with the same methods whichever library drives it. */
class Page {
  constructor(page, close, { puppeteer = false } = {}) {
    this.page = page;
    this.closeContext = close;
    this.puppeteer = puppeteer;
    /** Uncaught errors of the page. */
    this.errors = [];
    page.on('pageerror', (error) => this.errors.push(error?.message ?? String(error)));
  }

  goto(url) {
    return this.page.goto(url);
  }

  /** Runs `fn(arg)` in the page (it must be self-contained) and returns its result. */
  evaluate(fn, arg) {
    return this.page.evaluate(fn, arg);
  }

  /**
   * Polls `fn(arg)` in the page until it returns something truthy, which it returns; after
   * `timeout` ms it fails with "hung: waiting for <what>".
   */
  async waitFor(fn, arg, what, timeout = 60_000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const result = await this.evaluate(fn, arg);
      if (result) return result;
      if (Date.now() > deadline) throw new Error(`hung: waiting for ${what} (${timeout} ms)`);
      await sleep(50);
    }
  }

  click(selector) {
    return this.page.click(selector);
  }

  fill(selector, value) {
    return this.puppeteer ? this.page.locator(selector).fill(value) : this.page.fill(selector, value);
  }

  /** The text of the element `selector` (undefined if there is none). */
  text(selector) {
    return this.evaluate((selector) => document.querySelector(selector)?.textContent, selector);
  }

  /** Waits until the element `selector` has exactly this text (or matches the RegExp source). */
  async expectText(selector, expected, { contains = false } = {}) {
    await this.waitFor(
      ({ selector, expected, contains }) => {
        const text = document.querySelector(selector)?.textContent ?? '';
        return contains ? text.includes(expected) : text === expected;
      },
      { selector, expected, contains },
      `${selector} to ${contains ? 'contain' : 'read'} "${expected}"`,
      30_000,
    ).catch(async (error) => {
      throw new Error(`${error.message}; it reads "${await this.text(selector)}"`);
    });
  }

  /** The attribute `name` of the element `selector`. */
  attribute(selector, name) {
    return this.evaluate(({ selector, name }) => document.querySelector(selector)?.getAttribute(name),
      { selector, name });
  }

  /** Whether the element `selector` is shown. */
  visible(selector) {
    return this.evaluate((selector) => {
      const element = document.querySelector(selector);
      return !!element && !element.closest('[hidden]') && element.getClientRects().length > 0;
    }, selector);
  }

  /** Saves a full-page screenshot as `SCREENSHOTS/<name>-<browser>.png`; returns its path. */
  async screenshot(name) {
    mkdirSync(SCREENSHOTS, { recursive: true });
    const path = join(SCREENSHOTS, `${name}-${BROWSER}.png`);
    await this.page.screenshot({ path, fullPage: true });
    return path;
  }

  close() {
    return this.closeContext();
  }
}

/** Fails unless every property of `expected` equals the same property of `actual`. */
export function assertMatches(actual, expected, what = 'value') {
  for (const [key, value] of Object.entries(expected)) {
    if (actual?.[key] !== value) {
      throw new Error(`${what}.${key} is ${JSON.stringify(actual?.[key])}, expected ${JSON.stringify(value)} ` +
        `(in ${JSON.stringify(actual)})`);
    }
  }
}

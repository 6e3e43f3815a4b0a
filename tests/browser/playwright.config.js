// Run by `cargo xtask test` (suite "browser: end-to-end"), which builds the page, serves it
// with cross-origin isolation on a free port and passes its address in FOREMAN_URL.
import { defineConfig } from '@playwright/test';

if (!process.env.FOREMAN_URL) {
  throw new Error('FOREMAN_URL is not set: run these tests with `cargo xtask test --only browser`');
}

const args = (process.env.FOREMAN_CHROMIUM_ARGS ??
  '--headless --no-sandbox --disable-gpu --disable-quic --no-first-run ' +
  '--disable-background-networking --disable-component-update --disable-sync').split(' ');

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.js',
  timeout: 180_000,
  expect: { timeout: 30_000 },
  // Two cores: each test runs several threads of its own, so one test at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  forbidOnly: true,
  reporter: 'list',
  outputDir: process.env.FOREMAN_SCREENSHOTS ? `${process.env.FOREMAN_SCREENSHOTS}/test-results` : 'test-results',
  use: {
    baseURL: process.env.FOREMAN_URL,
    viewport: { width: 1440, height: 1300 },
    launchOptions: {
      executablePath: process.env.FOREMAN_CHROMIUM ?? '/usr/bin/chromium',
      args,
    },
  },
});

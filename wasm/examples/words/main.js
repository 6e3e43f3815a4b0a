// The example app's page: a JsPool summarizing texts (`await pool.run(document)`), and hooks
// for the browser tests (`window.words`).
import init, { startWords, rustScenario, sha256, heapStats } from './pkg/foreman_words.js';

const $ = (selector) => document.querySelector(selector);
const words = (window.words = { ready: false, error: null, events: [], notices: [] });

main().catch((error) => {
  words.error = String(error);
  $('#status').textContent = `could not start: ${error.message ?? error}`;
});

async function main() {
  await init();
  words.startWords = startWords;
  words.rustScenario = rustScenario;
  words.sha256 = sha256;
  words.heapStats = heapStats;
  const pool = startWords(2);
  pool.onEvent((event) => words.events.push(event));
  pool.onNotice((notice) => words.notices.push(notice));
  words.pool = pool;
  $('#status').textContent = `${crossOriginIsolated ? 'cross-origin isolated' : 'NOT isolated'}; 2 workers`;
  $('#run').disabled = false;
  $('#run').addEventListener('click', async () => {
    const output = $('#output');
    output.textContent = 'working…';
    try {
      const summary = await pool.run({ name: 'your text', text: $('#text').value });
      output.textContent = JSON.stringify(summary, null, 2);
    } catch (error) {
      output.textContent = `${error.kind}: ${error.message}`;
    }
  });
  words.ready = true;
}

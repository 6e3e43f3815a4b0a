// The page: controls, and a live view of the supervisor drawn every animation frame from
// `demo.view()` (never a blocking call: the page's thread only submits, ticks and reads).

import init, { Demo, startRayon, sharedModule, sharedMemory } from './pkg/foreman_demo.js';

const $ = (selector) => document.querySelector(selector);
const fmt = new Intl.NumberFormat('en-US');

/** What the tests (and a curious person in the console) can look at. */
const page = (window.foreman = {
  ready: false,
  error: null,
  demo: null,
  view: null,
  events: [],
  benchmark: null,
});

const THROUGHPUT_WINDOW_S = 60;
/** Events kept in `window.foreman.events` (the log on the page shows the last 300). */
const MAX_KEPT_EVENTS = 10000;
const SAMPLE_MS = 250;
/** The kinds of task the inject buttons submit (`#inject-<kind>`). */
const INJECT_KINDS = ['fail', 'panic', 'hang', 'slow'];

/** Sets `node`'s text, touching the DOM only if it changed. Returns whether it did. */
function setText(node, text) {
  if (node.textContent === text) return false;
  node.textContent = text;
  return true;
}

main().catch((error) => {
  page.error = String(error);
  showMessage(`The demo could not start: ${error.message ?? error}`, 'error');
  console.error(error);
});

async function main() {
  const isolated = globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === 'function';
  const pill = $('#isolation');
  if (!isolated) {
    pill.textContent = 'not cross-origin isolated';
    $('#isolation-help').hidden = false;
    $('#isolation-detail').textContent =
      `crossOriginIsolated is ${globalThis.crossOriginIsolated === true}; ` +
      `SharedArrayBuffer is ${typeof SharedArrayBuffer === 'function' ? 'available' : 'missing'}.`;
    $('#app').hidden = true;
    $('#supervisor-state').textContent = 'not started';
    return;
  }
  pill.textContent = 'cross-origin isolated';
  pill.classList.add('ok');

  await init();
  const demo = new Demo();
  page.demo = demo;
  describePolicy(demo.policy());
  const bench = demo.benchmark();
  $('#bench-rows').textContent = fmt.format(bench.rows);
  $('#picture-rows').textContent = fmt.format(demo.height);
  $('#bench-step').textContent = bench.step;
  $('#bench-iter').textContent = fmt.format(bench.max_iter);

  const params = new URLSearchParams(location.search);
  const cores = navigator.hardwareConcurrency || 2;
  const workers = params.get('workers') ?? String(Math.min(Math.max(cores, 2), 4, demo.maxWorkers));
  $('#workers').value = workers;
  $('#workers').max = demo.maxWorkers;
  $('#count').max = demo.maxBatch;
  wireControls(demo);
  attempt(() => demo.start(Number(workers)), started(Number(workers)));

  const picture = new Picture($('#picture'), demo);
  const throughput = new Throughput($('#throughput'));
  const log = new Log($('#log'));
  const cards = new WorkerCards($('#workers-grid'));
  const ledger = new Ledger($('#ledger'));
  const tick = () => demo.tick();
  setInterval(tick, SAMPLE_MS); // keeps supervising while the page is hidden (no frames then)

  page.ready = true;
  const frame = (now) => {
    // While the benchmark times a run, the page draws nothing (see `benchRunners`).
    if (timing > 0) {
      requestAnimationFrame(frame);
      return;
    }
    tick();
    const view = demo.view();
    page.view = view;
    for (const event of view.events) page.events.push(event);
    if (page.events.length > MAX_KEPT_EVENTS) page.events.splice(0, page.events.length - MAX_KEPT_EVENTS);
    log.add(view.events, view.events_dropped);
    cards.render(view);
    renderStats(view);
    ledger.render(view);
    throughput.sample(now, view.completed + view.failed);
    throughput.draw();
    picture.draw();
    renderControls(view);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

/** What the page says once `workers` workers started. */
function started(workers) {
  return `started ${workers} worker${workers === 1 ? '' : 's'}`;
}

/** Runs a demo call; shows its error (or `success`) under the controls. */
function attempt(call, success) {
  try {
    const result = call();
    if (success) showMessage(typeof success === 'function' ? success(result) : success, 'ok');
    return result;
  } catch (error) {
    showMessage(error.message ?? String(error), 'error');
    return undefined;
  }
}

function showMessage(text, kind = '') {
  const message = $('#message');
  message.textContent = text;
  message.className = `message ${kind}`;
}

/** Reads a whole number from an input, or explains what is wrong with it. */
function readWhole(input, what, min, max) {
  const raw = input.value.trim();
  const value = Number(raw);
  const problem =
    raw === '' ? `${what}: enter a number from ${min} to ${max}`
    : !Number.isInteger(value) ? `${what}: "${raw}" is not a whole number (use ${min} to ${max})`
    : value < min || value > max ? `${what}: ${value} is out of range (use ${min} to ${max})`
    : null;
  input.setAttribute('aria-invalid', problem ? 'true' : 'false');
  if (problem) {
    showMessage(problem, 'error');
    input.focus();
    return null;
  }
  return value;
}

function wireControls(demo) {
  $('#start-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const workers = readWhole($('#workers'), 'Workers', 1, demo.maxWorkers);
    if (workers !== null) attempt(() => demo.start(workers), started(workers));
  });
  $('#submit-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const count = readWhole($('#count'), 'Tasks', 1, demo.maxBatch);
    if (count !== null) attempt(() => demo.submit(count), (batch) => `batch #${batch}: ${count} tasks submitted`);
  });
  for (const kind of INJECT_KINDS) {
    $(`#inject-${kind}`).addEventListener('click', () =>
      attempt(() => demo.inject(kind), (id) => `task #${id} injected`));
  }
  // The Cancel button of a worker running an injected task.
  $('#workers-grid').addEventListener('click', (event) => {
    const button = event.target.closest('button.cancel');
    if (!button?.dataset.task) return;
    const id = Number(button.dataset.task);
    attempt(() => demo.cancel(id),
      (certain) => (certain ? `task #${id} cancelled: its worker is being replaced` : `task #${id} had already ended`));
  });
  $('#drain').addEventListener('click', () => attempt(() => demo.drain(), 'draining: the queue is finished first'));
  $('#abort').addEventListener('click', () => attempt(() => demo.abort(), 'aborting: queued tasks will be handed back'));
  $('#bench').addEventListener('click', () => runBenchmark(demo));
  for (const input of [$('#workers'), $('#count')]) {
    input.addEventListener('input', () => input.setAttribute('aria-invalid', 'false'));
  }
}

function describePolicy(policy) {
  $('#policy').textContent =
    `restart ${policy.restart} · ≤ ${policy.max_restarts} restarts / ${policy.window_ms / 1000} s · ` +
    `${policy.max_attempts} attempts · watchdog ${policy.watchdog_ms / 1000} s · ` +
    `recycle after ${policy.recycle_after} tasks · queue ${policy.queue}`;
}

let benchmarking = false;

function renderControls(view) {
  const running = view.state === 'running' && view.threads > 0;
  const stopped = view.state === 'stopped';
  const pill = $('#supervisor-state');
  if (setText(pill, view.shutdown ? `stopped (${view.shutdown})` : view.state)) pill.className = `pill ${view.state}`;
  const lock = (id, disabled) => { $(id).disabled = disabled || benchmarking; };
  // Start needs every thread gone, and a fresh or a stopped supervisor.
  lock('#start', view.threads > 0 || !(stopped || view.state === 'running'));
  lock('#submit', !running);
  for (const kind of INJECT_KINDS) lock(`#inject-${kind}`, !running);
  lock('#drain', stopped);
  lock('#abort', stopped);
  lock('#bench', !(running || stopped));
  setText($('#start'), stopped ? 'Start again' : 'Start');
  setText($('#start-hint'),
    running ? 'to change the count: drain or abort, then start again'
    : stopped && view.threads > 0 ? `${view.threads} workers still leaving…`
    : '');
}

function renderStats(view) {
  const memory = `${(view.memory_bytes / (1 << 20)).toFixed(1)} MiB`;
  const values = { ...view, memory };
  for (const node of document.querySelectorAll('[data-stat]')) {
    const value = values[node.dataset.stat];
    setText(node, typeof value === 'number' ? fmt.format(value) : String(value));
  }
  const addsUp = $('#adds-up');
  setText(addsUp, view.adds_up
    ? 'submitted = completed + failed + dead-lettered + lost + handed back + cancelled + queued + in flight ✓'
    : 'counters do not add up ✗');
  addsUp.style.color = view.adds_up ? 'var(--green)' : 'var(--red)';

  const queue = Math.min(1, view.queued / view.capacity);
  $('#queue-bar').style.width = `${(queue * 100).toFixed(1)}%`;
  $('#queue-bar').classList.toggle('full', queue > 0.9);
  setText($('#queue-count'), `${fmt.format(view.queued)} / ${fmt.format(view.capacity)}`);

  setText($('#threads'), `${view.threads} threads · slots 0–${view.workers.length - 1}`);
  const batch = view.batch;
  $('#picture-hint').hidden = view.submitted > 0;
  if (batch) {
    const share = batch.total === 0 ? 1 : batch.ended / batch.total;
    setText($('#batch-label'), `batch #${batch.id}`);
    setText($('#batch-count'),
      `${fmt.format(batch.ended)} / ${fmt.format(batch.total)} ended · ${fmt.format(batch.accepted)} submitted`);
    $('#batch-bar').style.width = `${(share * 100).toFixed(1)}%`;
  }
}

/** The ledger's line: its totals, and whether they agree with the supervisor's counters. */
class Ledger {
  constructor(root) {
    this.root = root;
    this.totals = document.createTextNode('');
    this.verdict = document.createElement('span');
    root.replaceChildren(this.totals, this.verdict);
  }

  render(view) {
    const l = view.ledger;
    const agrees = l.completed === view.completed && l.failed === view.failed
      && l.dead_lettered === view.dead_lettered && l.lost === view.lost
      // A task cancelled while queued that an abort handed back: the supervisor counts it handed
      // back, the ledger cancelled.
      && l.handed_back + l.cancelled === view.handed_back + view.cancelled
      && l.cancelled >= view.cancelled && l.pending === view.queued + view.in_flight;
    setText(this.totals,
      `Ledger (every task, one outcome each): ${fmt.format(l.completed)} completed, ${fmt.format(l.failed)} failed, ` +
      `${fmt.format(l.dead_lettered)} dead-lettered, ${fmt.format(l.lost)} lost, ${fmt.format(l.handed_back)} handed back, ${fmt.format(l.cancelled)} cancelled, ` +
      `${fmt.format(l.pending)} pending — `);
    const settled = view.in_flight === 0 || agrees;
    const verdictClass = agrees && l.violations === 0 ? 'ok' : settled ? 'bad' : '';
    if (this.verdict.className !== verdictClass) this.verdict.className = verdictClass;
    setText(this.verdict, l.violations > 0 ? `${l.violations} tasks ended twice ✗`
      : agrees ? 'agrees with the supervisor ✓' : 'catching up…');
    setData(this.root, 'agrees', String(agrees && l.violations === 0));
  }
}

/** Sets `node.dataset[key]`, touching the DOM only if it changed. */
function setData(node, key, value) {
  if (node.dataset[key] !== value) node.dataset[key] = value;
}

class WorkerCards {
  constructor(root) {
    this.root = root;
    this.cards = [];
    this.last = [];
  }

  /** A new card, and the nodes that `render` writes to. */
  static create() {
    const card = document.createElement('article');
    card.className = 'worker';
    card.innerHTML = '<div class="head"><span class="name"></span><span class="state"></span></div>' +
      '<div class="done num"> <small>done</small></div><div class="meta num"></div>' +
      '<div class="task-line"><div class="task"></div><button type="button" class="cancel" hidden>Cancel</button></div>';
    card.dataset.testid = 'worker';
    const done = document.createTextNode('');
    card.querySelector('.done').prepend(done);
    return {
      card,
      name: card.querySelector('.name'),
      state: card.querySelector('.state'),
      done,
      meta: card.querySelector('.meta'),
      task: card.querySelector('.task'),
      cancel: card.querySelector('.cancel'),
      shownState: null,
    };
  }

  render(view) {
    const shown = view.workers.filter((w, i) => i < Math.max(view.workers_wanted, 1) || w.state !== 'vacant');
    while (this.cards.length < shown.length) {
      const nodes = WorkerCards.create();
      this.root.append(nodes.card);
      this.cards.push(nodes);
    }
    while (this.cards.length > shown.length) this.cards.pop().card.remove();
    shown.forEach((worker, i) => {
      const nodes = this.cards[i];
      const { card } = nodes;
      const previous = this.last[worker.slot];
      if (previous && worker.crashes > previous.crashes) {
        card.classList.remove('flash');
        void card.offsetWidth; // restart the animation
        card.classList.add('flash');
      }
      if (nodes.shownState !== worker.state) {
        nodes.shownState = worker.state;
        card.classList.forEach((c) => { if (c.startsWith('s-')) card.classList.remove(c); });
        card.classList.add(`s-${worker.state}`);
        card.classList.toggle('vacant', worker.state === 'vacant');
      }
      setData(card, 'slot', String(worker.slot));
      setData(card, 'state', worker.state);
      setData(card, 'completed', String(worker.completed));
      setData(card, 'restarts', String(worker.restarts));
      setText(nodes.name, `Worker ${worker.slot}`);
      setText(nodes.state, worker.state);
      setText(nodes.done, fmt.format(worker.completed));
      setText(nodes.meta,
        `${worker.failed} failed · ${worker.crashes} crashes · ${worker.restarts} restarts · heap ${kib(worker.heap)}`);
      const task = worker.task;
      setText(nodes.task, !task ? '\u00a0'
        : task.kind === 'row' ? `#${task.id} · row ${task.row}, zoom ${task.view}`
        : `#${task.id} · ${task.kind} task`);
      // An injected task can be cancelled while it runs.
      const cancellable = !!task && task.kind !== 'row' && worker.state !== 'terminating';
      if (nodes.cancel.hidden === cancellable) nodes.cancel.hidden = !cancellable;
      setData(nodes.cancel, 'task', cancellable ? String(task.id) : '');
    });
    this.last = view.workers;
  }
}

function kib(bytes) {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${Math.round(bytes / 1024)} KiB`;
}

class Log {
  constructor(root) {
    this.root = root;
    this.placeholder = document.createElement('li');
    this.placeholder.className = 'empty';
    this.placeholder.textContent = 'nothing yet: inject a failing, panicking or hanging task';
    root.append(this.placeholder);
  }

  add(events, dropped) {
    if (dropped > 0) events = [{ at: events[0]?.at ?? 0, kind: 'log', level: 'warn', text: `${dropped} older events were dropped` }, ...events];
    for (const event of events) {
      this.placeholder.remove();
      const item = document.createElement('li');
      item.className = event.level;
      item.dataset.kind = event.kind;
      const at = document.createElement('span');
      at.className = 't';
      at.textContent = `${event.at.toFixed(2)} s`;
      const kind = document.createElement('span');
      kind.className = 'kind';
      kind.textContent = event.kind;
      const text = document.createElement('span');
      text.textContent = event.text;
      item.append(at, kind, text);
      this.root.prepend(item);
    }
    while (this.root.children.length > 300) this.root.lastElementChild.remove();
  }
}

class Picture {
  constructor(canvas, demo) {
    this.context = canvas.getContext('2d');
    this.demo = demo;
    this.image = this.context.createImageData(demo.width, demo.height);
    this.version = null;
  }

  /** Copies the picture onto the canvas, if a row was drawn since the last copy. */
  draw() {
    const version = this.demo.pictureVersion;
    if (version === this.version) return;
    this.version = version;
    this.image.data.set(this.demo.picture());
    this.context.putImageData(this.image, 0, 0);
  }
}

class Throughput {
  constructor(canvas) {
    this.canvas = canvas;
    this.context = canvas.getContext('2d');
    this.samples = [];
    this.lastAt = null;
    this.lastCount = 0;
    /** Whether the plot must be drawn again (a sample was added since the last draw). */
    this.stale = true;
  }

  sample(now, count) {
    if (this.lastAt === null) {
      this.lastAt = now;
      this.lastCount = count;
      return;
    }
    if (now - this.lastAt < SAMPLE_MS) return;
    const rate = ((count - this.lastCount) * 1000) / (now - this.lastAt);
    this.samples.push(rate);
    this.lastAt = now;
    this.lastCount = count;
    const keep = (THROUGHPUT_WINDOW_S * 1000) / SAMPLE_MS;
    if (this.samples.length > keep) this.samples.shift();
    this.stale = true;
    const recent = this.samples.slice(-4);
    setText($('#rate'), `${fmt.format(Math.round(recent.reduce((a, b) => a + b, 0) / recent.length))} tasks/s`);
  }

  /** Draws the plot, if a sample was added or the canvas changed size since the last time. */
  draw() {
    const { canvas, context: g } = this;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth * ratio;
    const height = canvas.clientHeight * ratio;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
      this.stale = true;
    }
    if (!this.stale) return;
    this.stale = false;
    g.clearRect(0, 0, width, height);
    const keep = (THROUGHPUT_WINDOW_S * 1000) / SAMPLE_MS;
    const top = Math.max(10, ...this.samples) * 1.15;
    const x = (i) => (i / (keep - 1)) * width;
    const y = (v) => height - (v / top) * (height - 6 * ratio) - 2 * ratio;
    g.strokeStyle = '#22304d';
    g.lineWidth = 1;
    for (let i = 1; i < 4; i++) {
      g.beginPath();
      g.moveTo(0, (height * i) / 4);
      g.lineTo(width, (height * i) / 4);
      g.stroke();
    }
    if (this.samples.length < 2) return;
    const offset = keep - this.samples.length;
    const gradient = g.createLinearGradient(0, 0, 0, height);
    gradient.addColorStop(0, 'rgba(45, 212, 191, 0.45)');
    gradient.addColorStop(1, 'rgba(45, 212, 191, 0.02)');
    g.beginPath();
    g.moveTo(x(offset), height);
    this.samples.forEach((v, i) => g.lineTo(x(offset + i), y(v)));
    g.lineTo(x(offset + this.samples.length - 1), height);
    g.closePath();
    g.fillStyle = gradient;
    g.fill();
    g.beginPath();
    this.samples.forEach((v, i) => (i ? g.lineTo(x(offset + i), y(v)) : g.moveTo(x(offset), y(v))));
    g.strokeStyle = '#2dd4bf';
    g.lineWidth = 2 * ratio;
    g.stroke();
    g.fillStyle = '#8d9ab5';
    g.font = `${11 * ratio}px system-ui`;
    g.fillText(`${fmt.format(Math.round(top / 1.15))}/s`, 6 * ratio, 13 * ratio);
    g.fillText(`last ${THROUGHPUT_WINDOW_S} s`, width - 60 * ratio, height - 6 * ratio);
  }
}

// ----- the benchmark ------------------------------------------------------------------------

/** Timed rounds (after one warm-up round). */
const RUNS = 3;

/** Resolves once `predicate(view)` holds (checked every frame), or rejects after `ms`. */
function until(predicate, ms, what) {
  return new Promise((resolve, reject) => {
    const deadline = performance.now() + ms;
    const check = () => {
      if (page.view && predicate(page.view)) return resolve(page.view);
      if (performance.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      requestAnimationFrame(check);
    };
    check();
  });
}

/** Stops the pool (drain) if it runs, then starts it again with `workers` workers. */
async function restartPool(demo, workers) {
  if (page.view.state !== 'stopped') {
    if (page.view.state === 'running') demo.drain();
    await until((v) => v.state === 'stopped', 30000, 'the pool to stop');
  }
  await until((v) => v.threads === 0, 30000, 'the workers to leave');
  demo.start(workers);
  await until((v) => v.workers.slice(0, workers).every((w) => w.state === 'idle'), 30000,
    `${workers} workers to start`);
}

let driver = null;
/**
 * How many benchmark runs are being timed (a count, so that the pause ends with the last run if
 * two ever overlap). While any is, the page stops drawing its view each frame (the counters,
 * the throughput chart, the workers' cards, the picture) and starts again after: drawing
 * foreman's progress while rayon's run has none to draw would time the page's work against
 * foreman only. What the pool does on the page (its wake-ups, each outcome's delivery) is still
 * timed.
 */
let timing = 0;

/**
 * The benchmark's two runners, each timed by the page from its call to its outcome, with the
 * page's drawing paused (`timing`): foreman (the demo's pool: one task per row) and rayon, on
 * the benchmark driver — a Web Worker on the same module and memory, since rayon's `par_iter`
 * blocks, which the page may not.
 */
async function benchRunners(demo) {
  if (driver) return driver;
  const worker = new Worker(new URL('./bench-driver.js', import.meta.url),
    { type: 'module', name: 'foreman benchmark driver' });
  await new Promise((resolve, reject) => {
    worker.addEventListener('message', ({ data }) => (data.ready ? resolve() : null), { once: true });
    worker.addEventListener('error', (event) => reject(new Error(`benchmark driver: ${event.message}`)), { once: true });
    worker.postMessage({ module: sharedModule(), memory: sharedMemory() });
  });
  // A run ends with the driver's answer, or with its failure: an error in the driver or a
  // message it could not read rejects the run (and so ends the page's pause in drawing).
  const rayon = () => new Promise((resolve, reject) => {
    const settle = (event) => {
      worker.removeEventListener('message', settle);
      worker.removeEventListener('error', settle);
      worker.removeEventListener('messageerror', settle);
      if (event.type === 'message' && event.data.ok) resolve();
      else reject(new Error(`benchmark driver: ${event.data?.error ?? event.message ?? event.type}`));
    };
    worker.addEventListener('message', settle);
    worker.addEventListener('error', settle);
    worker.addEventListener('messageerror', settle);
    worker.postMessage('rayon');
  });
  const timed = async (run) => {
    timing += 1;
    try {
      const started = performance.now();
      await run();
      return performance.now() - started;
    } finally {
      timing -= 1;
    }
  };
  driver = { run: (which) => timed(which === 'rayon' ? rayon : () => demo.benchForeman()) };
  return driver;
}

/**
 * The benchmark for `cargo xtask bench` (tests/browser/bench.js), without the panel: `prepare`
 * restarts the pool with `threads` workers and starts a rayon pool of as many threads (once
 * per page), then `run('foreman' | 'rayon')` draws the benchmark view once and resolves to
 * its time in milliseconds, measured as the panel measures it.
 */
page.bench = {
  async prepare(threads) {
    const demo = page.demo;
    await restartPool(demo, threads);
    await startRayon(threads);
    await benchRunners(demo);
  },
  run: (which) => driver.run(which),
};

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function runBenchmark(demo) {
  const view = page.view;
  const status = $('#bench-status');
  if (view.queued + view.in_flight + view.backlog > 0) {
    status.textContent = 'The benchmark needs an idle pool: wait for the current tasks, or abort them.';
    status.className = 'message error';
    return;
  }
  benchmarking = true;
  $('#bench').disabled = true;
  status.className = 'message';
  const workersBefore = Number($('#workers').value) || 2;
  const threads = Math.max(1, Math.min(navigator.hardwareConcurrency || 2, demo.maxWorkers));
  const results = [];
  try {
    status.textContent = `starting a rayon pool of ${threads} threads…`;
    await startRayon(threads);
    const timer = await benchRunners(demo);
    // Rounds of every configuration in turn, so that a change in the machine's load affects
    // them all alike; the first round warms up and is not counted.
    const configs = [
      ...Array.from({ length: threads }, (_, i) => ({ runner: 'foreman', threads: i + 1, runs: [] })),
      { runner: 'rayon', threads, runs: [] },
    ];
    for (let round = 0; round <= RUNS; round++) {
      for (const config of configs) {
        status.textContent = `round ${round === 0 ? 'warm-up' : `${round} of ${RUNS}`}: ` +
          `${config.runner} with ${config.threads} thread${config.threads > 1 ? 's' : ''}…`;
        if (config.runner === 'foreman') await restartPool(demo, config.threads);
        const ms = await timer.run(config.runner);
        if (round > 0) config.runs.push(ms);
      }
      if (round > 0) {
        results.splice(0, results.length,
          ...configs.map(({ runner, threads, runs }) => ({ runner, threads, ms: median(runs), runs: [...runs] })));
        renderBenchmark(results);
      }
    }
    status.textContent = `done: ${summary(results)}`;
    status.className = 'message ok';
    page.benchmark = results;
  } catch (error) {
    status.textContent = `The benchmark stopped: ${error.message ?? error}`;
    status.className = 'message error';
    page.benchmark = { error: String(error), results };
  } finally {
    try {
      await restartPool(demo, workersBefore);
    } catch (error) {
      showMessage(`could not restart the pool: ${error.message}`, 'error');
    }
    benchmarking = false;
  }
}

function summary(results) {
  const one = results.find((r) => r.runner === 'foreman' && r.threads === 1);
  const rayon = results.find((r) => r.runner === 'rayon');
  const same = results.find((r) => r.runner === 'foreman' && r.threads === rayon?.threads);
  const parts = [];
  const two = results.find((r) => r.runner === 'foreman' && r.threads === 2);
  if (one && two) parts.push(`2 workers are ${(one.ms / two.ms).toFixed(2)}× as fast as 1`);
  if (same && rayon) parts.push(`foreman/rayon time ratio at ${rayon.threads} threads: ${(same.ms / rayon.ms).toFixed(2)}`);
  return parts.join('; ');
}

function renderBenchmark(results) {
  const one = results.find((r) => r.runner === 'foreman' && r.threads === 1);
  const rayon = results.find((r) => r.runner === 'rayon');
  const body = $('#bench-table tbody');
  body.innerHTML = '';
  for (const result of results) {
    const row = document.createElement('tr');
    row.className = result.runner;
    const speedup = one ? `${(one.ms / result.ms).toFixed(2)}×` : '';
    const sameRayon = rayon && result.runner === 'foreman' && result.threads === rayon.threads
      ? (result.ms / rayon.ms).toFixed(2) : '';
    for (const text of [result.runner, result.threads, `${result.ms.toFixed(1)} ms`, speedup, sameRayon]) {
      const cell = document.createElement('td');
      cell.textContent = String(text);
      row.append(cell);
    }
    row.cells[2].title = `runs: ${result.runs.map((ms) => `${ms.toFixed(1)} ms`).join(', ')}`;
    row.dataset.runner = result.runner;
    row.dataset.threads = result.threads;
    row.dataset.ms = result.ms.toFixed(3);
    body.append(row);
  }
  drawBenchChart(results);
}

function drawBenchChart(results) {
  const canvas = $('#bench-chart');
  canvas.hidden = results.length === 0;
  const g = canvas.getContext('2d');
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth * ratio;
  const height = canvas.clientHeight * ratio;
  canvas.width = width;
  canvas.height = height;
  g.clearRect(0, 0, width, height);
  if (!results.length) return;
  const longest = Math.max(...results.map((r) => r.ms));
  const left = 120 * ratio;
  const bar = Math.min(28 * ratio, (height - 10 * ratio) / results.length - 8 * ratio);
  g.font = `${12 * ratio}px system-ui`;
  g.textBaseline = 'middle';
  results.forEach((result, i) => {
    const y = 6 * ratio + i * (bar + 8 * ratio);
    const length = ((width - left - 70 * ratio) * result.ms) / longest;
    g.fillStyle = '#8d9ab5';
    g.fillText(`${result.runner} × ${result.threads}`, 4 * ratio, y + bar / 2);
    g.fillStyle = result.runner === 'rayon' ? '#fbbf24' : '#2dd4bf';
    g.beginPath();
    g.roundRect(left, y, Math.max(2, length), bar, 4 * ratio);
    g.fill();
    g.fillStyle = '#e6ebf5';
    g.fillText(`${result.ms.toFixed(0)} ms`, left + length + 6 * ratio, y + bar / 2);
  });
}

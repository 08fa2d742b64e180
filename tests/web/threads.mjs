// Where the page's time goes, thread by thread (issue 19): the CPU time of every Chromium thread,
// grouped by process type and thread name, over each step of the page (load and first soft labels,
// a slider move, two warm queries), with the page's own adam-metric figures. BENCHMARKS.md,
// "SwiftShader's own kernel", says how to serve the page. Run it alone: it counts every Chromium.
// With `profile`, it also prints V8's CPU profile of the renderer over the slider move (self time
// per function; a wasm built with its names kept shows them: wasm-bindgen without
// --remove-name-section and no wasm-opt).
//   [SLIDES=n] node tests/web/threads.mjs URL [webgpu|cpu] [profile]
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import { recomputed, search } from './steps.mjs';

const url = process.argv[2];
const mode = process.argv[3] || 'webgpu';
const profile = process.argv[4] === 'profile';
const HZ = 100;

function snapshot() {
  const out = new Map();
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd;
    try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    if (!cmd.includes('chromium') && !cmd.includes('chrome')) continue;
    const type = (cmd.match(/--type=([a-z-]+)/) || [, 'browser'])[1];
    const sub = (cmd.match(/--utility-sub-type=([a-zA-Z.]+)/) || [, ''])[1];
    let tasks;
    try { tasks = fs.readdirSync(`/proc/${pid}/task`); } catch { continue; }
    for (const tid of tasks) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const comm = fs.readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const ticks = Number(f[11]) + Number(f[12]);
        out.set(`${pid}/${tid}`, { key: `${type}${sub ? ':' + sub : ''} ${comm.replace(/\d+$/, '#')}`, ticks });
      } catch { /* thread ended */ }
    }
  }
  return out;
}

function diff(a, b, wallMs, label) {
  const by = new Map();
  for (const [id, v] of b) {
    const d = v.ticks - (a.get(id)?.ticks || 0);
    if (d > 0) by.set(v.key, (by.get(v.key) || 0) + d);
  }
  const rows = [...by.entries()].sort((x, y) => y[1] - x[1]);
  const total = rows.reduce((s, r) => s + r[1], 0);
  console.log(`\n## ${label}: wall ${(wallMs / 1000).toFixed(2)} s, Chromium CPU ${(total / HZ).toFixed(2)} s`);
  for (const [k, t] of rows.slice(0, 14)) console.log(`${(t / HZ).toFixed(2).padStart(8)} s  ${(100 * t / total).toFixed(1).padStart(5)} %  ${k}`);
}

const args = ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu',
  ...(process.env.EXTRA_ARGS ? process.env.EXTRA_ARGS.split(' ') : [])];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args });
const page = await browser.newPage();
page.setDefaultTimeout(900000);
page.on('console', (m) => { if (/adam/.test(m.text())) console.log('console:', m.text()); });
let s0 = snapshot(); let t0 = Date.now();
await page.goto(`${url}?backend=${mode}`);
await page.waitForSelector('[data-testid=lab-result][data-example="0"]', { state: 'attached' });
let s1 = snapshot(); let t1 = Date.now();
diff(s0, s1, t1 - t0, 'load + first soft labels');
console.log('backend:', (await page.textContent('[data-testid=backend]')).trim());

const before = await page.getAttribute('[data-testid=lab-result]', 'data-settings');
const cdp = profile ? await page.context().newCDPSession(page) : null;
if (cdp) {
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
  await cdp.send('Profiler.start');
}
s0 = snapshot(); t0 = Date.now();
await page.focus('#mask');
await page.keyboard.press('ArrowRight');
await recomputed(page, before);
s1 = snapshot(); t1 = Date.now();
diff(s0, s1, t1 - t0, 'a slider move');
if (cdp) {
  const { profile: p } = await cdp.send('Profiler.stop');
  const nodes = new Map(p.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map();
  p.samples.forEach((id, i) => {
    const f = nodes.get(id);
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}`;
    self.set(name, (self.get(name) || 0) + (p.timeDeltas[i] || 0));
  });
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  console.log(`\n## V8 profile of the slider move: ${(total / 1000).toFixed(0)} ms sampled`);
  for (const [k, us] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
    console.log(`${(us / 1000).toFixed(0).padStart(7)} ms ${(100 * us / total).toFixed(1).padStart(5)} %  ${k.slice(0, 150)}`);
  }
}

// SLIDES=n: n - 1 more slider moves, each timed (one move is a small, noisy sample).
for (let i = 1; i < Number(process.env.SLIDES || 1); i++) {
  const settings = await page.getAttribute('[data-testid=lab-result]', 'data-settings');
  s0 = snapshot(); t0 = Date.now();
  await page.keyboard.press('ArrowRight');
  await recomputed(page, settings);
  diff(s0, snapshot(), Date.now() - t0, `slider move ${i + 1}`);
}

await page.click('#tab-search');
await search(page, 'what causes ocean tides');
for (let i = 0; i < 2; i++) {
  s0 = snapshot(); t0 = Date.now();
  const ms = await search(page, i ? 'who wrote the origin of species' : 'how do vaccines work');
  s1 = snapshot(); t1 = Date.now();
  diff(s0, s1, t1 - t0, `warm query ${i} (page says ${ms} ms)`);
}
await browser.close();

// A V8 CPU profile of the page's renderer over a slider move on ?backend=webgpu, self time per
// function (issue 19). Build the wasm with its names kept to read them: wasm-bindgen without
// --remove-name-section and no wasm-opt (BENCHMARKS.md, "SwiftShader's own kernel").
//   node tests/web/profile.mjs URL
import { chromium } from 'playwright-core';
const [url] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu'] });
const page = await browser.newPage();
page.setDefaultTimeout(900000);
await page.goto(`${url}?backend=webgpu`);
await page.waitForSelector('[data-testid=lab-result][data-example="0"]', { state: 'attached' });
const cdp = await page.context().newCDPSession(page);
await cdp.send('Profiler.enable');
await cdp.send('Profiler.setSamplingInterval', { interval: 1000 });
const before = await page.getAttribute('[data-testid=lab-result]', 'data-settings');
await cdp.send('Profiler.start');
const t0 = Date.now();
await page.focus('#mask');
await page.keyboard.press('ArrowRight');
await page.waitForFunction((b) => {
  const el = document.querySelector('[data-testid=lab-result]');
  return el && el.getAttribute('data-settings') !== b && document.querySelector('.status').textContent.indexOf('Computing') < 0;
}, before);
const wall = Date.now() - t0;
const { profile } = await cdp.send('Profiler.stop');
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = profile.timeDeltas;
profile.samples.forEach((id, i) => {
  const n = byId.get(id);
  const name = `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').pop()}`;
  self.set(name, (self.get(name) || 0) + (dt[i] || 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
console.log(`slider move: wall ${wall} ms, sampled ${(total / 1000).toFixed(0)} ms`);
for (const [k, v] of [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
  console.log(`${(v / 1000).toFixed(0).padStart(7)} ms ${(100 * v / total).toFixed(1).padStart(5)} %  ${k.slice(0, 150)}`);
}
await browser.close();

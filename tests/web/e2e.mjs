// Drives the demo in headless Chromium and prints one JSON line for tests/tests/web.rs.
//   node e2e.mjs URL MODE SCREENSHOT_DIR SEARCH_QUERY
// MODE: webgpu (SwiftShader WebGPU adapter: the page's own choice, then ?backend=webgpu), cpu (no
// adapter), broken (expects an error message).
import { chromium } from 'playwright-core';
import { recomputed, search } from './steps.mjs';

const [url, mode, shots, query] = process.argv.slice(2);
const TIMEOUT = Number(process.env.ADAM_E2E_TIMEOUT_MS || 600000);

const args = [
  '--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
if (mode === 'webgpu') args.push('--enable-unsafe-webgpu');

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args,
});
const logs = [];
let result = { mode };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  let target = url;
  if (mode === 'webgpu') {
    // Left to itself the page runs on the CPU when the only adapter is a software one (this
    // machine's SwiftShader); ?backend=webgpu makes it use the adapter so its figures are measured.
    // Asked for a backend it does not know (?backend=gpu), it says so and chooses by itself.
    await page.goto(url + (url.includes('?') ? '&' : '?') + 'backend=gpu');
    await page.waitForFunction(() => {
      const b = document.querySelector('[data-testid=backend]');
      return b && b.textContent.trim() !== 'choosing…';
    });
    result.auto_backend = (await page.textContent('[data-testid=backend]')).trim();
    result.auto_why = (await page.textContent('.why')).trim();
    target = url + (url.includes('?') ? '&' : '?') + 'backend=webgpu';
  }
  const started = Date.now();
  await page.goto(target);

  if (mode === 'broken') {
    const el = await page.waitForSelector('[data-testid=error]');
    result.error = (await el.textContent()).trim();
    result.backend = (await page.textContent('[data-testid=backend]')).trim();
    await page.screenshot({ path: `${shots}/broken-desktop.png`, fullPage: true });
  } else {
    const probs = async () => ({
      teacher: (await page.getAttribute('[data-testid=teacher-probs]', 'data-probs')).split(' ').map(Number),
      student: (await page.getAttribute('[data-testid=student-probs]', 'data-probs')).split(' ').map(Number),
    });
    await page.waitForSelector('[data-testid=lab-result][data-example="0"]', { state: 'attached' });
    result.wall_first_soft_labels_ms = Date.now() - started;
    result.backend = (await page.textContent('[data-testid=backend]')).trim();
    result.why = (await page.textContent('.why')).trim();
    Object.assign(result, await probs());
    // The walk-through's numbers for the first example, at the default settings.
    result.walkthrough = await page.$eval('[data-testid=walkthrough]', (ol) => ({
      plain_positive: Number(ol.dataset.plainPositive),
      in_band: ol.dataset.inBand === '' ? null : Number(ol.dataset.inBand),
      confidence: Number(ol.dataset.confidence),
      text: ol.textContent,
    }));
    await page.screenshot({ path: `${shots}/${mode}-lab-desktop.png`, fullPage: true });

    // Keyboard: focus the mask-ratio slider and step it right (0.30 → 0.35).
    const before = await page.getAttribute('[data-testid=lab-result]', 'data-settings');
    await page.focus('#mask');
    await page.keyboard.press('ArrowRight');
    await recomputed(page, before);
    result.settings_after_key = JSON.parse(await page.getAttribute('[data-testid=lab-result]', 'data-settings'));
    const m = await probs();
    result.teacher_mask = m.teacher;
    result.student_mask = m.student;

    // Noisy positives made the other way (masking or deleting pieces) than the assets open with
    // (on the CPU page only: a re-score on software WebGPU takes most of a minute).
    if (mode === 'cpu') {
      const opened = await page.getAttribute('[data-testid=lab-result]', 'data-settings');
      const other = JSON.parse(opened).noisy_mode === 'delete' ? 'mask' : 'delete';
      await page.selectOption('#noisy', other);
      await recomputed(page, opened);
      result.noisy_switched_to = other;
      result.settings_after_switch = JSON.parse(await page.getAttribute('[data-testid=lab-result]', 'data-settings'));
      const d = await probs();
      result.teacher_switch = d.teacher;
      result.student_switch = d.student;
      result.lab_text_switch = await page.textContent('[data-testid=lab-result]');
      await page.screenshot({ path: `${shots}/${mode}-lab-${other}-desktop.png`, fullPage: true });
    }

    // Self-paced view.
    await page.click('#tab-selfpaced');
    result.selfpaced = (await page.textContent('[data-testid=selfpaced-share]')).trim();
    await page.screenshot({ path: `${shots}/${mode}-selfpaced-desktop.png`, fullPage: true });

    // Search, twice: the first query pays for kernel compilation, the second is warm.
    await page.click('#tab-search');
    const cold = await search(page, 'what causes ocean tides');
    const warm = await search(page, query);
    const hits = await page.$$eval('[data-testid=search-results] li', (lis) => lis.map((li) => ({
      id: li.querySelector('.docid').textContent.trim(),
      score: Number(li.querySelector('.score').textContent),
    })));
    result.search = { cold_ms: cold, warm_ms: warm, hits };
    await page.screenshot({ path: `${shots}/${mode}-search-desktop.png`, fullPage: true });

    await page.click('#tab-report');
    // The tab renders its <img> at once but the plot loads afterwards (a slow machine lost
    // that race): wait until every image has loaded or failed, then count the loaded ones.
    await page.waitForSelector('[data-testid=report] img', { timeout: 30000 }).catch(() => {});
    await page.waitForFunction(
      () => [...document.querySelectorAll('[data-testid=report] img')].every((i) => i.complete),
      null, { timeout: 30000 },
    ).catch(() => {});
    result.report_images = await page.$$eval('[data-testid=report] img', (imgs) => imgs.filter((i) => i.complete && i.naturalWidth > 0).length);
    // The comparison table as a reader sees it: header, then per row the method, runs and each
    // cell's text with the mean it shows.
    result.report_table = await page.$$eval('[data-testid=report-table]', (tables) => tables.map((t) => ({
      head: [...t.querySelectorAll('thead th')].map((th) => th.textContent.trim()),
      rows: [...t.querySelectorAll('tbody tr')].map((tr) => ({
        method: tr.querySelector('th').textContent.trim(),
        cells: [...tr.querySelectorAll('td')].map((td) => ({ text: td.textContent.trim(), mean: td.dataset.mean ?? null })),
      })),
    })));
    await page.screenshot({ path: `${shots}/${mode}-report-desktop.png`, fullPage: true });

    // Phone width.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: `${shots}/${mode}-report-phone.png`, fullPage: true });
    await page.click('#tab-search');
    await page.screenshot({ path: `${shots}/${mode}-search-phone.png`, fullPage: true });
    await page.click('#tab-lab');
    await page.screenshot({ path: `${shots}/${mode}-lab-phone.png`, fullPage: true });
    result.metrics = await page.evaluate(() => window.__adam || {});
    result.metrics.query_encode_cold_ms = cold;
    result.metrics.query_encode_warm_ms = warm;
    result.metrics.wall_first_soft_labels_ms = result.wall_first_soft_labels_ms;
  }
} catch (e) {
  console.error(`e2e ${mode} failed: ${e.stack || e}`);
  console.error(logs.slice(-40).join('\n'));
  await browser.close();
  process.exit(1);
}
await browser.close();
result.logs = logs.slice(-30);
console.log(JSON.stringify(result));

// Steps on the demo page that both e2e.mjs (the end-to-end test) and threads.mjs (timings) take.

// Waits until the lab shows the result of other settings than `before`, computed.
export const recomputed = (page, before) => page.waitForFunction(
  (b) => {
    const el = document.querySelector('[data-testid=lab-result]');
    return el && el.getAttribute('data-settings') !== b && document.querySelector('.status').textContent.indexOf('Computing') < 0;
  },
  before,
);

// Searches for `text` on the search tab; returns the page's encoding time (ms).
export const search = async (page, text) => {
  await page.fill('[data-testid=search-input]', text);
  // Waits on the count of finished searches: two encodings can take the same time.
  const old = await page.$('[data-testid=search-timing]');
  const before = old ? await old.getAttribute('data-searches') : null;
  await page.press('[data-testid=search-input]', 'Enter');
  await page.waitForFunction((b) => {
    const el = document.querySelector('[data-testid=search-timing]');
    return el && el.getAttribute('data-searches') !== b;
  }, before);
  return Number(await page.getAttribute('[data-testid=search-timing]', 'data-encode-ms'));
};

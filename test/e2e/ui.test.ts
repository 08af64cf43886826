/**
 * The search page (`/`) and the API reference (`/docs`) in headless Chromium against the real
 * stack (embedded PostgreSQL, the embedder with the real potion model, wrangler dev): mint or
 * paste a token, add texts, watch the jobs finish, search by a paraphrase, read the ranked result;
 * then send a request from the reference's "Try it" form. Screenshots go to test-results/.
 *
 * Needs Chromium (Debian's `chromium` package; .ci/run installs it). CHROMIUM_PATH overrides
 * /usr/bin/chromium.
 */
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { DEFAULT_FUSION, DEFAULT_SEARCH_MODE, SEARCH_MODES } from '../../contract/internal.js';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/lib/stack.js';
import { mintDevToken } from '../../scripts/lib/token.js';
import { startE2eStack } from '../helpers/e2e.js';
import { TEST_MODEL, assertTestModel } from '../helpers/paths.js';
import { testEnv } from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARTEFACTS = path.join(REPO_ROOT, 'test-results');

let stack: TestStack;
let browser: Browser;
const org = `ui-${Date.now().toString(36)}`;

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM}: apt-get install chromium (as .ci/run does) or set CHROMIUM_PATH`,
    );
  }
  assertTestModel();
  fs.mkdirSync(ARTEFACTS, { recursive: true });
  [stack, browser] = await Promise.all([
    startE2eStack('ui', { env: testEnv() }),
    chromium.launch({ executablePath: CHROMIUM }),
  ]);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await stack?.dispose();
}, 60_000);

/**
 * Types `query` and clicks Search (`before` runs in between: a filter, an option), then waits for
 * the first of the `results` (default: every result in the list) and returns them.
 */
async function searchFor(
  page: Page,
  query: string,
  opts: { results?: string; before?: () => Promise<unknown> } = {},
): Promise<Locator> {
  await page.fill('#query', query);
  await opts.before?.();
  await page.click('#search');
  const results = page.locator(opts.results ?? '#results li.result');
  await results.first().waitFor();
  return results;
}

/** A page that records script errors and CSP violations (Chromium logs those as console errors). */
async function openPage(pathname: string): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
  page.on('request', (r) => {
    if (!r.url().startsWith(stack.apiUrl) && !r.url().startsWith('data:')) {
      problems.push(`external request: ${r.url()}`);
    }
  });
  await page.goto(stack.apiUrl + pathname);
  return { page, problems };
}

async function addText(page: Page, asset: string, segment: string, text: string): Promise<void> {
  const rows = await page.locator('#jobs tr').count();
  await page.fill('#asset', asset);
  await page.fill('#segment', segment);
  await page.fill('#text', text);
  await page.click('#add');
  await page.locator('#jobs tr').nth(rows).waitFor();
}

describe('the search page in a browser', () => {
  it('mints a dev token, adds two texts, watches them succeed and finds a paraphrase', async () => {
    const { page, problems } = await openPage('/');
    await page.fill('#org', org);
    await page.click('#mint');
    await page.locator('#whoami', { hasText: `Signed in as organisation ${org}` }).waitFor();

    await addText(page, 'pets', 'dog', 'A large furry dog is running in the park');
    await addText(
      page,
      'finance',
      'rates',
      'The central bank raised interest rates to fight inflation',
    );
    // Both rows turn SUCCEEDED as the page polls GET /jobs/{id}.
    await page.locator('#jobs .badge.status-SUCCEEDED').nth(1).waitFor({ timeout: 60_000 });
    expect(await page.locator('#jobs .badge').allTextContents()).toEqual([
      'SUCCEEDED',
      'SUCCEEDED',
    ]);
    const tokens = await page.locator('#jobs tr td:nth-child(3)').allTextContents();
    expect(tokens.every((t) => Number(t) > 3)).toBe(true);

    // Dense mode: ranked by meaning, scored by cosine similarity.
    expect(await page.inputValue('#mode')).toBe('hybrid');
    await page.selectOption('#mode', 'dense');
    const dense = await searchFor(page, 'A big hairy canine is jogging outdoors', {
      results: '#results[data-mode="dense"] li.result',
    });
    const first = dense.first();
    expect(await page.locator('#results li.result').count()).toBe(2);
    expect(await first.locator('.asset').textContent()).toBe('pets');
    expect(await first.locator('.segment').textContent()).toBe('dog');
    const score = Number(await first.locator('.score').textContent());
    expect(score).toBeGreaterThan(0.5);
    expect(score).toBeLessThan(0.99);
    expect(await first.locator('.score-kind').textContent()).toBe('cosine');
    const second = Number(await page.locator('#results li.result .score').nth(1).textContent());
    expect(second).toBeLessThan(score);
    // The text is shown from the tab's memory; the metadata comes from the API.
    expect(await first.locator('.snippet').textContent()).toBe(
      'A large furry dog is running in the park',
    );
    expect(await first.locator('.meta').textContent()).toContain(`${TEST_MODEL}@1`);
    expect(await page.locator('#search-summary').textContent()).toMatch(
      new RegExp(
        `^2 results · dense search · score: cosine similarity · model ${TEST_MODEL}@1 · \\d+ ms$`,
      ),
    );

    // Keyword mode (another mode re-runs the search on screen): only the text with the query's
    // words, scored by BM25.
    await page.fill('#query', 'furry dog');
    await page.selectOption('#mode', 'keyword');
    const keyword = page.locator('#results[data-mode="keyword"] li.result');
    await keyword.first().waitFor();
    expect(await keyword.count()).toBe(1);
    expect(await keyword.first().locator('.segment').textContent()).toBe('dog');
    expect(await keyword.first().locator('.score-kind').textContent()).toBe('BM25');
    expect(Number(await keyword.first().locator('.score').textContent())).toBeGreaterThan(0);
    expect(await page.locator('#search-summary').textContent()).toMatch(
      /^1 result · keyword search · score: BM25 · /,
    );

    // Hybrid with explain: the fused score, and each result's place in both rankings.
    await page.selectOption('#mode', 'hybrid');
    await page.check('#explain');
    const hybrid = page.locator('#results[data-mode="hybrid"] li.result');
    await hybrid.locator('.explain').nth(1).waitFor();
    expect(await hybrid.count()).toBe(2);
    expect(await hybrid.locator('.segment').allTextContents()).toEqual(['dog', 'rates']);
    expect(await hybrid.locator('.score-kind').allTextContents()).toEqual(['fused', 'fused']);
    const fused = (await hybrid.locator('.score').allTextContents()).map(Number);
    expect(fused[0]).toBeGreaterThan(fused[1]!);
    // The default fusion, DBSF at equal weights (Qdrant's): a ranking of two maps its first to
    // (1 + 3√2) / 6√2 (mean ± 3 sample sd), a ranking of one to 0.5, whatever the scores.
    expect(DEFAULT_FUSION).toMatchObject({ method: 'dbsf', weight: 0.5 });
    const firstOfTwo = (1 + 3 * Math.SQRT2) / (6 * Math.SQRT2);
    expect(fused[0]).toBeCloseTo(firstOfTwo + 0.5, 3);
    expect(fused[1]).toBeCloseTo(1 - firstOfTwo, 3);
    const ranking = (i: number, name: string) =>
      hybrid.nth(i).locator(`.explain [data-ranking="${name}"] dd`).textContent();
    expect(await ranking(0, 'dense')).toMatch(/^#1 · cosine 0\.\d{3}$/);
    expect(await ranking(0, 'keyword')).toMatch(/^#1 · BM25 \d+\.\d{3}$/);
    expect(await ranking(1, 'dense')).toMatch(/^#2 · cosine -?0\.\d{3}$/);
    expect(await ranking(1, 'keyword')).toBe('not ranked');
    expect(await page.locator('#search-summary').textContent()).toMatch(
      /^2 results · hybrid search · score: fused score · /,
    );

    await page.screenshot({ path: path.join(ARTEFACTS, 'ui-search.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  });

  it('works with a pasted token, and shows API errors as problems', async () => {
    const { page, problems } = await openPage('/');
    const token = await mintDevToken({ secret: stack.devJwtSecret, org });
    await page.fill('#token', token);
    await page.locator('#whoami', { hasText: `Signed in as organisation ${org}` }).waitFor();
    const results = await searchFor(page, 'monetary policy and inflation', {
      before: () => page.fill('#asset-filter', 'finance'),
    });
    const first = results.first();
    expect(await page.locator('#results li.result').count()).toBe(1);
    expect(await first.locator('.segment').textContent()).toBe('rates');
    // Not typed in this tab: Heimdex does not store texts, so the page says so.
    expect(await first.locator('.snippet').textContent()).toContain('Text not added in this tab');

    // A bad token: the 401 problem is shown with its code and request id.
    await page.fill('#token', token.slice(0, -4) + 'AAAA');
    await page.click('#search');
    await page.locator('#search-problem', { hasText: '401 unauthorized' }).waitFor();
    expect(await page.locator('#search-problem').textContent()).toContain('request id');
    expect(problems.filter((p) => !p.includes('401'))).toEqual([]);
    await page.context().close();
  });

  it('labels the score by the mode the API answered with, and says when it differs', async () => {
    const { page, problems } = await openPage('/');
    const sent: unknown[] = [];
    // A store without a keyword index answers a hybrid search with the dense ranking.
    await page.route('**/vectors/search', async (route) => {
      sent.push(route.request().postDataJSON());
      await route.fulfill({
        status: 200,
        contentType: 'application/json',
        body: JSON.stringify({
          results: [
            {
              point_id: crypto.randomUUID(),
              score: 0.5,
              payload: {
                org_id: org,
                asset_id: 'a<b>',
                segment_id: 's1',
                modality: 'text',
                model: TEST_MODEL,
                model_ver: '1',
                text_len: 5,
                token_count: 3,
                truncated: false,
                truncated_len: 5,
                job_id: crypto.randomUUID(),
                embedded_at: new Date().toISOString(),
              },
              explain: { dense: { rank: 1, score: 0.5 }, keyword: null },
            },
          ],
          mode: 'dense',
          query_model: TEST_MODEL,
          query_model_ver: '1',
          total: 1,
        }),
      });
    });
    const hit = await searchFor(page, 'anything', {
      results: '#results[data-mode="dense"] li.result',
      before: () => page.check('#explain'),
    });
    expect(sent).toEqual([{ query_text: 'anything', limit: 10, mode: 'hybrid', explain: true }]);
    expect(await hit.locator('.score').textContent()).toBe('0.500');
    expect(await hit.locator('.score-kind').textContent()).toBe('cosine');
    expect(await hit.locator('.asset').textContent()).toBe('a<b>'); // text, not markup
    expect(await hit.locator('.explain').textContent()).toBe(
      'dense#1 · cosine 0.500keywordnot ranked',
    );
    expect(await page.locator('#search-summary').textContent()).toMatch(
      /^1 result · dense search, not hybrid: the store has no keyword index · score: cosine similarity · /,
    );
    expect(problems).toEqual([]);
    await page.context().close();
  });
});

describe('the API reference in a browser', () => {
  it('lists every operation and sends a request from a "Try it" form', async () => {
    const doc = (await (await fetch(`${stack.apiUrl}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const { page, problems } = await openPage('/docs');
    await page.waitForSelector('body[data-loaded]');
    const shown = await page
      .locator('section.op')
      .evaluateAll((els) => els.map((e) => `${e.dataset.method} ${e.dataset.path}`));
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.keys(ops).map((m) => `${m} ${p}`),
    );
    expect(shown.sort()).toEqual(documented.sort());

    // Sidebar paths wrap only before a slash, never inside `{…}` (issue 12.8).
    const toc = page
      .locator('nav#toc a', { hasText: '/vectors/points/{point_id}' })
      .locator('.seg');
    expect(await toc.allTextContents()).toEqual(['/vectors', '/points', '/{point_id}']);
    const broken = await page
      .locator('nav#toc .seg')
      .evaluateAll((els) => els.filter((e) => e.getClientRects().length > 1).length);
    expect(broken).toBe(0);

    const search = page.locator('section.op[data-path="/vectors/search"]');
    expect(await search.locator('.auth').textContent()).toContain('Requires Authorization');
    expect(await search.locator('tr[data-status="401"]').count()).toBe(1);
    expect(await search.locator('tr[data-status="415"]').count()).toBe(1);
    // Search modes, fusion and explain, from the schemas: request body, then the 200 answer.
    const request = await search.locator('ul.schema').first().textContent();
    expect(request).toContain(`mode: ${SEARCH_MODES.map((m) => `"${m}"`).join(' | ')}`);
    expect(request).toContain(`default "${DEFAULT_SEARCH_MODE}"`);
    expect(request).toMatch(/fusion: Fusion.*k: integer≥ 1, ≤ 1000.*weight: number≥ 0, ≤ 1/);
    expect(request).toContain('explain: boolean');
    const answer = await search.locator('tr[data-status="200"]').textContent();
    expect(answer).toContain('dense: object | null');
    expect(answer).toContain('keyword: object | null');
    expect(answer).toContain('rank: integerrequired> 0');
    expect(answer).toMatch(/mode: "dense" \| "keyword" \| "hybrid"required— the mode used/);

    await page.fill('#token', await mintDevToken({ secret: stack.devJwtSecret, org }));
    // The form is pre-filled from the schema's examples: the paraphrase query.
    await search.locator('form.try button[type=submit]').click();
    await search.locator('.out-status[data-status="200"]').waitFor();
    const out = JSON.parse((await search.locator('pre.out').textContent())!) as {
      results: Array<{ payload: { segment_id: string } }>;
    };
    expect(out.results[0]!.payload.segment_id).toBe('dog');

    const job = page.locator('section.op[data-path="/jobs/{job_id}"]');
    await job.locator('input[name="job_id"]').fill(crypto.randomUUID());
    await job.locator('form.try button[type=submit]').click();
    await job.locator('.out-status[data-status="404"]').waitFor();
    expect(await job.locator('pre.out').textContent()).toContain('"code": "not_found"');

    await page.locator('header.top').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(ARTEFACTS, 'ui-docs.png'), fullPage: false });
    expect(problems.filter((p) => !/404/.test(p))).toEqual([]);
    await page.context().close();
  });
});

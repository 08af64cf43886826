/**
 * The search page at `/`: sign in with a token (or mint a dev token when the Worker runs in local
 * development), add texts, watch their jobs, search and see ranked results. Everything goes through
 * the public API from the browser; the page itself holds no data. Texts typed into the page stay
 * in the tab's memory (shown beside results as "added in this tab"): Heimdex never stores them.
 *
 * Search takes a mode (dense, keyword or hybrid; the API's default preselected) and can explain
 * each result's rank and score in the dense and keyword rankings; the score is labelled by what it
 * is for the mode the API used (cosine, BM25 or RRF).
 *
 * The client script is plain ES2022 in a string (no bundler step), and builds every element with
 * textContent, never innerHTML with data.
 */
import { DEFAULT_SEARCH_MODE, SEARCH_MODES } from '../../../contract/internal';
import type { SearchMode } from '../../../contract/internal';
import { pageScript, escapeHtml, renderShell } from './page';

export interface SearchPageOptions {
  nonce: string;
  /** Show the "mint a dev token" form (ENVIRONMENT=development and AUTH_PROVIDER=dev). */
  devTokens: boolean;
  /** The JWT claim path that holds the org id (AUTH_TENANT_CLAIM), to show who is signed in. */
  tenantClaim: string;
}

/** The page as the OpenAPI document describes it (GET /). */
export const SEARCH_PAGE = {
  summary: 'The search page: sign in, add texts, watch jobs, search (HTML)',
  description: 'A self-contained HTML page (inline CSS/JS under a nonce CSP)',
};

export function renderSearchPage(o: SearchPageOptions): string {
  return renderShell({
    nonce: o.nonce,
    title: 'Heimdex search',
    data: { 'dev-tokens': String(o.devTokens), 'tenant-claim': o.tenantClaim },
    css: CSS,
    body: BODY,
    script: SCRIPT,
  });
}

const CSS = `
.grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1rem; }
@media (max-width: 860px) { .grid { grid-template-columns: minmax(0, 1fr); } }
#token { font-family: var(--mono); font-size: .8rem; }
#whoami { margin-top: .5rem; font-size: .9rem; }
#whoami.ok { color: var(--ok); }
#whoami.bad { color: var(--bad); }
.or { margin: .75rem 0 .5rem; font-size: .8rem; color: var(--muted); text-transform: uppercase; letter-spacing: .06em; }
#jobs-empty, #results-empty { padding: .5rem 0; }
ol#results { list-style: none; margin: 0; padding: 0; }
ol#results li { border-top: 1px solid var(--line); padding: .7rem 0; display: grid;
  grid-template-columns: 2.2rem 6.5rem minmax(0, 1fr); gap: .25rem .75rem; align-items: start; }
ol#results li:first-child { border-top: 0; }
.rank { font-weight: 700; color: var(--muted); font-size: 1.1rem; }
.score { font-family: var(--mono); font-weight: 700; }
.bar { height: 5px; background: #e7eaf3; border-radius: 3px; margin-top: .3rem; overflow: hidden; }
.bar > span { display: block; height: 100%; background: var(--accent); }
.ids { font-weight: 600; }
.snippet { margin: .2rem 0; }
.snippet.unknown { color: var(--muted); font-style: italic; }
.meta { display: flex; flex-wrap: wrap; gap: .2rem .9rem; font-size: .8rem; color: var(--muted); margin: 0; }
.meta dt { display: inline; font-weight: 600; }
.meta dd { display: inline; margin: 0 0 0 .25rem; font-family: var(--mono); }
#search-summary { margin: .5rem 0; font-size: .85rem; }
.row > .mode { flex: 1 1 10rem; }
label.check { display: flex; gap: .4rem; align-items: center; margin: 0 0 .6rem; font-size: .9rem;
  color: var(--ink); white-space: nowrap; cursor: pointer; }
label.check input { width: auto; margin: 0; }
.score-kind { font-size: .7rem; color: var(--muted); text-transform: uppercase; letter-spacing: .05em; cursor: help; }
.explain { display: flex; flex-wrap: wrap; gap: .2rem .9rem; font-size: .8rem; margin: .3rem 0 0;
  padding: .3rem .5rem; background: #f3f5fb; border-radius: 4px; }
.explain dt { display: inline; font-weight: 600; }
.explain dd { display: inline; margin: 0 0 0 .25rem; font-family: var(--mono); }
.explain .absent dd { color: var(--muted); font-family: inherit; font-style: italic; }
`;

/** What each mode ranks by, in the mode selector. */
const MODE_LABELS: Record<SearchMode, string> = {
  dense: 'dense: by meaning',
  keyword: 'keyword: exact words (BM25)',
  hybrid: 'hybrid: both, fused',
};

const MODE_OPTIONS = SEARCH_MODES.map(
  (m) =>
    `<option value="${escapeHtml(m)}"${m === DEFAULT_SEARCH_MODE ? ' selected' : ''}>${escapeHtml(MODE_LABELS[m])}</option>`,
).join('');

const BODY = `
<header class="top">
  <h1>Heimdex</h1><span class="tag">semantic search</span>
  <nav><a href="/docs">API reference</a><a href="/openapi.json">OpenAPI</a></nav>
</header>
<main>
  <section class="card" id="auth-card">
    <h2>1. Sign in</h2>
    <label for="token">Bearer token (JWT)</label>
    <div class="row">
      <div class="grow"><input id="token" name="token" autocomplete="off" spellcheck="false" placeholder="paste a token (npm run token -- --org acme)"></div>
      <button id="forget" class="secondary" type="button">Forget</button>
    </div>
    <div id="dev-mint" class="hidden">
      <div class="or">or, in local development</div>
      <form id="mint-form" class="row">
        <div class="grow"><label for="org">Organisation id</label><input id="org" name="org" value="acme" autocomplete="off"></div>
        <button id="mint" type="submit">Mint a dev token</button>
      </form>
    </div>
    <div id="whoami" class="muted">No token yet.</div>
  </section>

  <div class="grid">
    <section class="card" id="add-card">
      <h2>2. Add texts</h2>
      <form id="add-form">
        <div class="row">
          <div class="grow"><label for="asset">Asset id</label><input id="asset" name="asset" value="notes" autocomplete="off"></div>
          <div class="grow"><label for="segment">Segment id</label><input id="segment" name="segment" value="s1" autocomplete="off"></div>
        </div>
        <div class="row">
          <div class="grow"><label for="text">Text</label><textarea id="text" name="text" rows="3" placeholder="A large furry dog is running in the park"></textarea></div>
        </div>
        <div class="row"><button id="add" type="submit">Add text</button><span id="add-status" class="muted"></span></div>
      </form>
      <div id="add-problem" class="problem hidden" role="alert"></div>
      <h2>Jobs</h2>
      <table>
        <thead><tr><th>asset / segment</th><th>status</th><th>tokens</th><th>job</th></tr></thead>
        <tbody id="jobs"></tbody>
      </table>
      <div id="jobs-empty" class="muted">Jobs you create appear here and update until they finish.</div>
    </section>

    <section class="card" id="search-card">
      <h2>3. Search</h2>
      <form id="search-form">
        <div class="row">
          <div class="grow"><label for="query">Query</label><input id="query" name="query" autocomplete="off" placeholder="A big hairy canine is jogging outdoors"></div>
        </div>
        <div class="row">
          <div class="grow"><label for="asset-filter">Only asset (optional)</label><input id="asset-filter" name="asset-filter" autocomplete="off"></div>
          <div class="narrow"><label for="limit">Limit</label><input id="limit" name="limit" type="number" min="1" max="100" value="10"></div>
        </div>
        <div class="row">
          <div class="mode"><label for="mode">Mode</label><select id="mode" name="mode">${MODE_OPTIONS}</select></div>
          <label class="check" for="explain" title="show each result's rank and score in the dense and in the keyword ranking"><input id="explain" name="explain" type="checkbox"> Explain ranks</label>
          <button id="search" type="submit">Search</button>
        </div>
      </form>
      <div id="search-problem" class="problem hidden" role="alert"></div>
      <div id="search-summary" class="muted"></div>
      <ol id="results"></ol>
      <div id="results-empty" class="muted">Results appear here, best match first.</div>
    </section>
  </div>
</main>
`;

const SCRIPT = pageScript(String.raw`
  const body = document.body;
  const TERMINAL = new Set(['SUCCEEDED', 'FAILED']);
  const jobs = new Map();
  const texts = new Map();
  let pollTimer = null;

  class Problem extends Error {
    constructor(status, body) {
      super((body && body.detail) || 'HTTP ' + status);
      this.status = status;
      this.body = body || {};
    }
  }

  async function api(method, path, payload) {
    const headers = { accept: 'application/json' };
    const token = $('token').value.trim();
    if (token) headers.authorization = 'Bearer ' + token;
    if (payload !== undefined) headers['content-type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload === undefined ? undefined : JSON.stringify(payload) });
    } catch (err) {
      throw new Problem(0, { code: 'network_error', detail: 'the API is unreachable (' + err.message + ')' });
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
    if (!res.ok) throw new Problem(res.status, data);
    return { status: res.status, data };
  }

  function showProblem(box, err) {
    box.replaceChildren();
    if (!err) { box.classList.add('hidden'); return; }
    const b = err.body || {};
    box.append(el('strong', { text: (err.status ? err.status + ' ' : '') + (b.code || 'error') }), ' ', b.detail || err.message);
    if (Array.isArray(b.errors) && b.errors.length) {
      box.append(el('ul', {}, ...b.errors.map((e) => el('li', {}, el('code', { text: e.field }), ': ' + e.message))));
    }
    if (b.request_id) box.append(el('div', { class: 'muted mono', text: 'request id ' + b.request_id }));
    if (err.status === 401) box.append(el('div', { text: 'Check the token in step 1.' }));
    box.classList.remove('hidden');
  }

  // ---- 1. token -------------------------------------------------------------------------------
  function claimAt(payload, path) {
    let cur = payload;
    for (const key of path.split('.')) {
      if (cur === null || typeof cur !== 'object') return undefined;
      cur = cur[key];
    }
    return cur;
  }

  function describeToken() {
    const who = $('whoami');
    const token = $('token').value.trim();
    who.className = '';
    if (!token) { who.className = 'muted'; who.textContent = 'No token yet.'; return; }
    try {
      const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const claims = JSON.parse(atob(part + '='.repeat((4 - (part.length % 4)) % 4)));
      const org = claimAt(claims, body.dataset.tenantClaim || 'org_id');
      const mins = claims.exp ? Math.round((claims.exp * 1000 - Date.now()) / 60000) : null;
      if (mins !== null && mins <= 0) { who.className = 'bad'; who.textContent = 'This token has expired.'; return; }
      who.className = 'ok';
      who.textContent = 'Signed in as organisation ' + (org === undefined ? '(no tenant claim!)' : String(org)) +
        (mins === null ? '' : ' · expires in ' + mins + ' min');
    } catch {
      who.className = 'bad';
      who.textContent = 'That does not look like a JWT.';
    }
  }

  function setToken(token) {
    $('token').value = token;
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
    describeToken();
  }

  $('token').addEventListener('input', () => setToken($('token').value.trim()));
  $('forget').addEventListener('click', () => setToken(''));
  setToken(sessionStorage.getItem(TOKEN_KEY) || '');

  if (body.dataset.devTokens === 'true') {
    $('dev-mint').classList.remove('hidden');
    $('mint-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('mint').disabled = true;
      try {
        const { data } = await api('POST', '/dev/token', { org_id: $('org').value.trim() });
        setToken(data.token);
      } catch (err) {
        const who = $('whoami');
        who.className = 'bad';
        who.textContent = 'Could not mint a token: ' + ((err.body && err.body.detail) || err.message);
      } finally {
        $('mint').disabled = false;
      }
    });
  }

  // ---- 2. add texts and watch their jobs ---------------------------------------------------------
  const key = (asset, segment) => asset + '\u0000' + segment;

  function nextSegmentId(id) {
    const m = /^(.*?)(\d+)$/.exec(id);
    return m ? m[1] + String(Number(m[2]) + 1) : id + '-2';
  }

  function renderJob(job) {
    let row = document.querySelector('tr[data-job-id="' + job.job_id + '"]');
    if (!row) {
      row = el('tr', { 'data-job-id': job.job_id });
      $('jobs').prepend(row);
      $('jobs-empty').classList.add('hidden');
    }
    const status = el('span', { class: 'badge status-' + job.status, text: job.status });
    const statusCell = el('td', { class: 'job-status' }, status);
    if (job.error) statusCell.append(el('div', { class: 'muted', text: job.error.code + ': ' + job.error.message }));
    row.replaceChildren(
      el('td', {}, el('span', { class: 'ids', text: job.asset_id }), ' / ', el('span', { class: 'ids', text: job.segment_id })),
      statusCell,
      el('td', { class: 'mono', text: job.result ? String(job.result.token_count) + (job.result.truncated ? ' (truncated)' : '') : '–' }),
      el('td', { class: 'mono muted', title: job.job_id, text: job.job_id.slice(0, 8) }),
    );
  }

  async function poll() {
    pollTimer = null;
    const pending = [...jobs.values()].filter((j) => !TERMINAL.has(j.status));
    await Promise.all(pending.map(async (j) => {
      try {
        const { data } = await api('GET', '/jobs/' + encodeURIComponent(j.job_id));
        jobs.set(data.job_id, data);
        renderJob(data);
      } catch (err) {
        showProblem($('add-problem'), err);
      }
    }));
    schedulePoll();
  }

  function schedulePoll() {
    if (pollTimer === null && [...jobs.values()].some((j) => !TERMINAL.has(j.status))) {
      pollTimer = setTimeout(poll, 400);
    }
  }

  $('add-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const item = { asset_id: $('asset').value.trim(), segment_id: $('segment').value.trim(), text: $('text').value };
    $('add').disabled = true;
    showProblem($('add-problem'), null);
    try {
      const { status, data } = await api('POST', '/vectors/embed', item);
      texts.set(key(data.asset_id, data.segment_id), item.text);
      const known = jobs.get(data.job_id);
      const job = known || { job_id: data.job_id, asset_id: data.asset_id, segment_id: data.segment_id, status: 'QUEUED', result: null, error: null };
      jobs.set(job.job_id, job);
      renderJob(job);
      $('add-status').textContent = status === 200 ? 'Unchanged text: the existing job.' : 'Job created.';
      $('segment').value = nextSegmentId(item.segment_id);
      $('text').value = '';
      $('text').focus();
      schedulePoll();
    } catch (err) {
      showProblem($('add-problem'), err);
    } finally {
      $('add').disabled = false;
    }
  });

  // ---- 3. search --------------------------------------------------------------------------------
  // What a result's score is, by the mode the API used (the response's mode).
  const SCORE_KIND = { dense: 'cosine', keyword: 'BM25', hybrid: 'fused' };
  const SCORE_NAME = { dense: 'cosine similarity', keyword: 'BM25', hybrid: 'fused score' };
  const SCORE_MEANS = {
    dense: 'cosine similarity of the query and text vectors, in [-1, 1]',
    keyword: 'BM25 score of the query words in the text',
    hybrid: 'the dense and keyword rankings fused (each normalised by its spread, summed)',
  };
  // Fused scores are small (RRF's are hundredths at the default k), so they get more decimals.
  const fmt = (score, mode) => score.toFixed(mode === 'hybrid' ? 4 : 3);
  let searches = 0;
  let searched = false;

  function renderExplain(explain) {
    const box = el('dl', { class: 'explain' });
    for (const ranking of ['dense', 'keyword']) {
      const r = explain[ranking];
      box.append(el('div', { class: r ? 'ranked' : 'absent', 'data-ranking': ranking },
        el('dt', { text: ranking }),
        el('dd', { text: r ? '#' + r.rank + ' · ' + SCORE_KIND[ranking] + ' ' + fmt(r.score, ranking) : 'not ranked' })));
    }
    return box;
  }

  function renderResult(hit, rank, mode, best) {
    const p = hit.payload;
    const known = texts.get(key(p.asset_id, p.segment_id));
    // Cosine is absolute; BM25 and RRF only compare within one answer, so the bar is relative to the best.
    const share = mode === 'dense' ? hit.score : best > 0 ? hit.score / best : 0;
    const fill = el('span');
    fill.style.width = (Math.max(0, Math.min(1, share)) * 100).toFixed(1) + '%';
    const meta = el('dl', { class: 'meta' });
    const add = (k, v) => meta.append(el('div', {}, el('dt', { text: k }), el('dd', { text: v })));
    add('model', p.model + '@' + p.model_ver);
    add('tokens', String(p.token_count) + (p.truncated ? ' (truncated to ' + p.truncated_len + ')' : ''));
    add('chars', String(p.text_len));
    // A chunked text: which chunk scored, and where it lies in the text.
    if (p.chunk_count > 1) add('chunk', (p.chunk_index + 1) + ' of ' + p.chunk_count + ', characters ' + p.chunk_start + '–' + p.chunk_end);
    add('embedded', new Date(p.embedded_at).toLocaleString());
    add('point', hit.point_id);
    return el('li', { class: 'result', 'data-point-id': hit.point_id },
      el('div', { class: 'rank', text: '#' + rank }),
      el('div', {},
        el('div', { class: 'score', text: fmt(hit.score, mode) }),
        el('div', { class: 'score-kind', title: SCORE_MEANS[mode], text: SCORE_KIND[mode] }),
        el('div', { class: 'bar' }, fill)),
      el('div', {},
        el('div', {}, el('span', { class: 'ids asset', text: p.asset_id }), ' / ', el('span', { class: 'ids segment', text: p.segment_id })),
        known === undefined
          ? el('div', { class: 'snippet unknown', text: 'Text not added in this tab (Heimdex stores vectors, not text).' })
          : el('div', { class: 'snippet', text: p.chunk_count > 1 ? Array.from(known).slice(p.chunk_start, p.chunk_end).join('') : known }),
        meta,
        hit.explain ? renderExplain(hit.explain) : null));
  }

  $('search-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const req = { query_text: $('query').value, limit: Number($('limit').value) || 10, mode: $('mode').value };
    const asset = $('asset-filter').value.trim();
    if (asset) req.asset_id = asset;
    if ($('explain').checked) req.explain = true;
    const seq = ++searches;
    $('search').disabled = true;
    showProblem($('search-problem'), null);
    const started = performance.now();
    try {
      const { data } = await api('POST', '/vectors/search', req);
      if (seq !== searches) return; // a newer search is on its way
      const ms = Math.round(performance.now() - started);
      const mode = data.mode || req.mode;
      const best = data.results.reduce((m, hit) => Math.max(m, hit.score), 0);
      $('results').dataset.mode = mode;
      $('results').replaceChildren(...data.results.map((hit, i) => renderResult(hit, i + 1, mode, best)));
      $('results-empty').classList.toggle('hidden', data.results.length > 0);
      $('results-empty').textContent = 'No results.';
      const other = mode !== req.mode ? ', not ' + req.mode + ': the store has no keyword index' : '';
      $('search-summary').textContent = data.results.length + ' result' + (data.results.length === 1 ? '' : 's') +
        ' · ' + mode + ' search' + other + ' · score: ' + SCORE_NAME[mode] +
        ' · model ' + data.query_model + '@' + data.query_model_ver + ' · ' + ms + ' ms';
      searched = true;
    } catch (err) {
      if (seq === searches) showProblem($('search-problem'), err);
    } finally {
      if (seq === searches) $('search').disabled = false;
    }
  });

  // Another mode or explain setting re-runs the search on screen.
  for (const id of ['mode', 'explain']) {
    $(id).addEventListener('change', () => { if (searched && $('query').value.trim()) $('search-form').requestSubmit(); });
  }
`);

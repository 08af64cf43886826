/**
 * The interactive API reference at `/docs`. The page is a shell; its script loads `/openapi.json`
 * (the document generated from the same zod schemas that validate requests) and renders every
 * operation: parameters, request and response schemas, error responses, auth, and a "Try it" form
 * that sends the request to this origin with the bearer token from the page. No CDN, no external
 * resources; every element is built with textContent.
 */
import { pageScript, renderShell } from './page';

/** The page as the OpenAPI document describes it (GET /docs). */
export const DOCS_PAGE = {
  summary: 'Interactive API reference with "Try it" forms (HTML)',
  description: 'A self-contained HTML page that renders /openapi.json',
};

export function renderDocsPage(o: { nonce: string }): string {
  return renderShell({
    nonce: o.nonce,
    title: 'Heimdex API reference',
    css: CSS,
    body: BODY,
    script: SCRIPT,
  });
}

const CSS = `
.layout { display: grid; grid-template-columns: 17rem minmax(0, 1fr); gap: 1.25rem; align-items: start; }
@media (max-width: 860px) { .layout { grid-template-columns: minmax(0, 1fr); } }
nav#toc { position: sticky; top: 1rem; background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; padding: .75rem; font-size: .85rem; max-height: calc(100vh - 2rem); overflow: auto; }
nav#toc h3 { margin: .6rem 0 .2rem; font-size: .75rem; text-transform: uppercase; color: var(--muted); letter-spacing: .05em; }
nav#toc a { display: flex; gap: .4rem; align-items: baseline; padding: .15rem .2rem; color: var(--ink); text-decoration: none; border-radius: 4px; }
nav#toc a:hover { background: #eef1fb; }
/* A path wraps only at a slash (<wbr> before each): a segment such as {point_id} never splits. */
.seg { white-space: nowrap; }
.method { display: inline-block; min-width: 3.6rem; text-align: center; font: 700 .7rem var(--mono);
  padding: .1rem .3rem; border-radius: 4px; color: #fff; text-transform: uppercase; }
.m-get { background: #1a7f5a; } .m-post { background: #3151d3; } .m-delete { background: #b3261e; }
.m-put, .m-patch { background: #a05a00; }
.op h2 { display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; }
.op h2 .path { font-family: var(--mono); font-size: 1rem; }
.op h4 { margin: 1rem 0 .35rem; font-size: .85rem; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
.auth { font-size: .85rem; margin: .2rem 0 .4rem; }
.auth.locked { color: var(--warn); }
.schema { font-family: var(--mono); font-size: .8rem; margin: 0; padding-left: 1rem; list-style: none; }
.schema > li { margin: .15rem 0; }
.schema .name { font-weight: 700; }
.schema .type { color: #5a3fb0; }
.schema .req { color: var(--bad); font-size: .7rem; margin-left: .3rem; }
.schema .cons { color: var(--muted); margin-left: .4rem; }
.schema .desc { font-family: system-ui, sans-serif; color: var(--muted); margin-left: .4rem; }
.resp-code { font: 700 .85rem var(--mono); }
.resp-code.ok { color: var(--ok); } .resp-code.err { color: var(--bad); }
details > summary { cursor: pointer; color: var(--accent); font-size: .85rem; }
.try { background: #f8f9fc; border: 1px dashed var(--line); border-radius: 6px; padding: .75rem; margin-top: .75rem; }
.try textarea { font-family: var(--mono); font-size: .8rem; }
pre.out { background: #0f1523; color: #dfe6ff; padding: .75rem; border-radius: 6px; overflow: auto;
  font-size: .8rem; max-height: 24rem; margin: .5rem 0 0; white-space: pre-wrap; word-break: break-word; }
.out-status { font: 700 .85rem var(--mono); margin-top: .5rem; }
#token-bar { display: flex; gap: .75rem; align-items: flex-end; }
#token-bar .grow { flex: 1; }
#token { font-family: var(--mono); font-size: .8rem; }
`;

const BODY = `
<header class="top">
  <h1>Heimdex API</h1><span class="tag" id="version"></span>
  <nav><a href="/">Search page</a><a href="/openapi.json">openapi.json</a></nav>
</header>
<main>
  <section class="card" id="intro">
    <p id="description" class="muted">Loading /openapi.json…</p>
    <div id="token-bar">
      <div class="grow"><label for="token">Bearer token for "Try it" (kept in this tab only)</label>
      <input id="token" autocomplete="off" spellcheck="false" placeholder="eyJhbGciOi…"></div>
    </div>
  </section>
  <div class="layout">
    <nav id="toc" aria-label="Operations"></nav>
    <div id="ops"></div>
  </div>
</main>
`;

const SCRIPT = pageScript(String.raw`
  const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
  let doc = null;

  /** A path as unbreakable "/segment" spans with a line-break opportunity before each slash. */
  function pathEl(cls, path) {
    const node = el('span', { class: cls });
    path.split('/').slice(1).forEach((seg, i) => {
      if (i > 0) node.append(document.createElement('wbr'));
      node.append(el('span', { class: 'seg', text: '/' + seg }));
    });
    return node;
  }

  $('token').value = sessionStorage.getItem(TOKEN_KEY) || '';
  $('token').addEventListener('input', () => {
    const t = $('token').value.trim();
    if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
  });

  // ---- schemas ----------------------------------------------------------------------------------
  function resolve(ref) {
    if (!ref.startsWith('#/')) return null;
    let cur = doc;
    for (const raw of ref.slice(2).split('/')) {
      const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
      if (cur === null || typeof cur !== 'object' || !(part in cur)) return null;
      cur = cur[part];
    }
    return cur;
  }

  const refName = (ref) => ref.split('/').pop();

  function deref(schema) {
    let s = schema;
    for (let i = 0; s && s.$ref && i < 10; i++) s = resolve(s.$ref);
    return s || {};
  }

  function typeLabel(schema) {
    if (schema.$ref) {
      // A named schema that admits null (zod's .nullable() on a registered schema) says so.
      const t = deref(schema).type;
      return refName(schema.$ref) + (Array.isArray(t) && t.includes('null') ? ' | null' : '');
    }
    const s = schema;
    if (s.const !== undefined) return JSON.stringify(s.const);
    if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' | ');
    const variants = s.anyOf || s.oneOf;
    if (variants) return variants.map(typeLabel).join(' | ');
    let t = Array.isArray(s.type) ? s.type.join(' | ') : s.type || 'any';
    if (t === 'array' && s.items) t = typeLabel(s.items) + '[]';
    if (s.format) t += ' (' + s.format + ')';
    return t;
  }

  function constraints(s) {
    const out = [];
    const add = (label, v) => { if (v !== undefined) out.push(label + v); };
    add('min length ', s.minLength); add('max length ', s.maxLength);
    add('≥ ', s.minimum); add('≤ ', s.maximum);
    add('> ', s.exclusiveMinimum); add('< ', s.exclusiveMaximum);
    add('min items ', s.minItems); add('max items ', s.maxItems);
    if (s.pattern) out.push('pattern ' + s.pattern);
    if (s.default !== undefined) out.push('default ' + JSON.stringify(s.default));
    if (s.example !== undefined) out.push('e.g. ' + JSON.stringify(s.example));
    if (s.additionalProperties === false) out.push('no other fields');
    return out.join(', ');
  }

  /** A nested list of an object schema's fields (refs expanded, cycles cut). */
  function schemaTree(schema, seen) {
    seen = seen || new Set();
    const list = el('ul', { class: 'schema' });
    const s = deref(schema);
    if (schema.$ref) {
      if (seen.has(schema.$ref)) return el('span', { class: 'type', text: refName(schema.$ref) + ' (see above)' });
      seen = new Set(seen); seen.add(schema.$ref);
    }
    const variants = s.anyOf || s.oneOf;
    if (variants) {
      for (const v of variants) list.append(el('li', {}, el('span', { class: 'type', text: 'one of: ' + typeLabel(v) }), childTree(v, seen)));
      return list;
    }
    if (s.type === 'array' && s.items) {
      list.append(el('li', {}, el('span', { class: 'type', text: 'array of ' + typeLabel(s.items) }),
        el('span', { class: 'cons', text: constraints(s) }), childTree(s.items, seen)));
      return list;
    }
    const props = s.properties || {};
    const required = new Set(s.required || []);
    if (!Object.keys(props).length) {
      list.append(el('li', {}, el('span', { class: 'type', text: typeLabel(schema) }), el('span', { class: 'cons', text: constraints(s) })));
      return list;
    }
    for (const [name, prop] of Object.entries(props)) {
      const p = deref(prop);
      list.append(el('li', {},
        el('span', { class: 'name', text: name }), ': ',
        el('span', { class: 'type', text: typeLabel(prop) }),
        required.has(name) ? el('span', { class: 'req', text: 'required' }) : null,
        el('span', { class: 'cons', text: constraints(p) }),
        p.description ? el('span', { class: 'desc', text: '— ' + p.description }) : null,
        childTree(prop, seen)));
    }
    return list;
  }

  function childTree(schema, seen) {
    const s = deref(schema);
    const inner = s.type === 'array' ? deref(s.items || {}) : s;
    const nested = (inner.properties && Object.keys(inner.properties).length) || inner.anyOf || inner.oneOf;
    return nested ? schemaTree(s.type === 'array' ? s.items : schema, seen) : null;
  }

  /** A plausible request body from a schema: examples first, then defaults, then by type. */
  function example(schema, depth) {
    depth = depth || 0;
    const s = deref(schema);
    if (s.example !== undefined) return s.example;
    if (s.default !== undefined) return s.default;
    if (s.const !== undefined) return s.const;
    if (s.enum) return s.enum[0];
    if (depth > 6) return null;
    const variants = s.anyOf || s.oneOf;
    if (variants) return example(variants[0], depth + 1);
    const type = Array.isArray(s.type) ? s.type.find((t) => t !== 'null') : s.type;
    if (type === 'object' || s.properties) {
      const out = {};
      const required = new Set(s.required || []);
      for (const [name, prop] of Object.entries(s.properties || {})) {
        const p = deref(prop);
        if (required.has(name) || p.example !== undefined) out[name] = example(prop, depth + 1);
      }
      return out;
    }
    if (type === 'array') return [example(s.items || {}, depth + 1)];
    if (type === 'integer' || type === 'number') return s.minimum !== undefined ? s.minimum : 1;
    if (type === 'boolean') return false;
    if (s.format === 'uuid') return crypto.randomUUID();
    return 'string';
  }

  // ---- operations -------------------------------------------------------------------------------
  function operations() {
    const ops = [];
    for (const [path, item] of Object.entries(doc.paths || {})) {
      for (const method of METHODS) {
        if (item[method]) ops.push({ path, method, op: item[method], shared: item.parameters || [] });
      }
    }
    return ops;
  }

  const anchor = (o) => 'op-' + (o.op.operationId || (o.method + o.path).replace(/[^A-Za-z0-9]+/g, '-'));

  function isSecured(op) {
    const sec = op.security !== undefined ? op.security : doc.security || [];
    return sec.length > 0 && sec.some((req) => Object.keys(req).length > 0);
  }

  function renderParams(params) {
    if (!params.length) return null;
    const rows = params.map((p0) => {
      const p = p0.$ref ? resolve(p0.$ref) : p0;
      const s = p.schema || {};
      return el('tr', {},
        el('td', { class: 'mono', text: p.name }), el('td', { text: p.in }),
        el('td', { text: p.required ? 'yes' : 'no' }),
        el('td', { class: 'mono', text: typeLabel(s) }),
        el('td', { class: 'muted', text: [p.description, constraints(deref(s))].filter(Boolean).join(' · ') }));
    });
    return el('div', {}, el('h4', { text: 'Parameters' }),
      el('table', {}, el('thead', {}, el('tr', {}, ...['name', 'in', 'required', 'type', 'notes'].map((h) => el('th', { text: h })))),
        el('tbody', {}, ...rows)));
  }

  function renderBody(rb) {
    if (!rb) return null;
    const out = el('div', {}, el('h4', { text: 'Request body' + (rb.required ? ' (required)' : '') }));
    for (const [type, media] of Object.entries(rb.content || {})) {
      out.append(el('div', { class: 'mono muted', text: type + (media.schema && media.schema.$ref ? ' · ' + refName(media.schema.$ref) : '') }));
      if (media.schema) out.append(schemaTree(media.schema));
    }
    return out;
  }

  function renderResponses(responses) {
    const rows = Object.entries(responses || {}).sort(([a], [b]) => a.localeCompare(b)).map(([code, r0]) => {
      const r = r0.$ref ? resolve(r0.$ref) : r0;
      const ok = code.startsWith('2');
      const cell = el('td', {});
      for (const [type, media] of Object.entries(r.content || {})) {
        const label = type + (media.schema ? ' · ' + typeLabel(media.schema) : '');
        if (media.schema) cell.append(el('details', {}, el('summary', { text: label }), schemaTree(media.schema)));
        else cell.append(el('div', { class: 'mono', text: label }));
      }
      return el('tr', { 'data-status': code },
        el('td', {}, el('span', { class: 'resp-code ' + (ok ? 'ok' : 'err'), text: code })),
        el('td', { text: r.description || '' }), cell);
    });
    return el('div', {}, el('h4', { text: 'Responses' }),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', { text: 'status' }), el('th', { text: 'meaning' }), el('th', { text: 'body' }))),
        el('tbody', {}, ...rows)));
  }

  function renderTry(o) {
    const params = [...o.shared, ...(o.op.parameters || [])].map((p) => (p.$ref ? resolve(p.$ref) : p));
    const form = el('form', { class: 'try', 'data-try': anchor(o) });
    form.append(el('h4', { text: 'Try it' }));
    const inputs = {};
    for (const p of params.filter((p) => p.in === 'path' || p.in === 'query')) {
      const id = anchor(o) + '-param-' + p.name;
      const input = el('input', { id, name: p.name, autocomplete: 'off', placeholder: typeLabel(p.schema || {}) });
      if (p.schema && deref(p.schema).format === 'uuid') input.value = '';
      inputs[p.name] = { input, param: p };
      form.append(el('div', { class: 'row' }, el('div', { class: 'grow' }, el('label', { for: id, text: p.name + ' (' + p.in + ')' }), input)));
    }
    let bodyArea = null;
    const media = o.op.requestBody && o.op.requestBody.content && o.op.requestBody.content['application/json'];
    if (media) {
      const id = anchor(o) + '-body';
      bodyArea = el('textarea', { id, rows: '6', spellcheck: 'false' });
      bodyArea.value = JSON.stringify(example(media.schema || {}), null, 2);
      form.append(el('label', { for: id, text: 'JSON body' }), bodyArea);
    }
    const send = el('button', { type: 'submit', text: 'Send ' + o.method.toUpperCase() + ' ' + o.path });
    const status = el('div', { class: 'out-status hidden' });
    const out = el('pre', { class: 'out hidden' });
    form.append(el('div', { class: 'row' }, send), status, out);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let path = o.path;
      const query = new URLSearchParams();
      for (const [name, { input, param }] of Object.entries(inputs)) {
        const v = input.value;
        if (param.in === 'path') path = path.replace('{' + name + '}', encodeURIComponent(v));
        else if (v !== '') query.set(name, v);
      }
      const qs = query.toString();
      const headers = { accept: 'application/json' };
      const token = $('token').value.trim();
      if (token && isSecured(o.op)) headers.authorization = 'Bearer ' + token;
      if (bodyArea) headers['content-type'] = 'application/json';
      send.disabled = true;
      const started = performance.now();
      try {
        const res = await fetch(path + (qs ? '?' + qs : ''), { method: o.method.toUpperCase(), headers, body: bodyArea ? bodyArea.value : undefined });
        const text = await res.text();
        let pretty = text;
        try { pretty = JSON.stringify(JSON.parse(text), null, 2); } catch { /* not JSON */ }
        status.textContent = res.status + ' ' + res.statusText + ' · ' + Math.round(performance.now() - started) + ' ms' +
          (res.headers.get('x-request-id') ? ' · request id ' + res.headers.get('x-request-id') : '');
        status.className = 'out-status resp-code ' + (res.ok ? 'ok' : 'err');
        status.dataset.status = String(res.status);
        out.textContent = pretty;
      } catch (err) {
        status.textContent = 'network error: ' + err.message;
        status.className = 'out-status resp-code err';
        out.textContent = '';
      } finally {
        out.classList.remove('hidden');
        send.disabled = false;
      }
    });
    return form;
  }

  function renderOp(o) {
    const secured = isSecured(o.op);
    const params = [...o.shared, ...(o.op.parameters || [])];
    return el('section', { class: 'card op', id: anchor(o), 'data-method': o.method, 'data-path': o.path },
      el('h2', {}, el('span', { class: 'method m-' + o.method, text: o.method }), pathEl('path', o.path),
        el('span', { class: 'muted', text: o.op.summary || '' })),
      o.op.description ? el('p', { class: 'muted', text: o.op.description }) : null,
      el('div', { class: 'auth' + (secured ? ' locked' : '') },
        secured ? 'Requires Authorization: Bearer <JWT> (' + (o.op.security || doc.security).flatMap(Object.keys).join(', ') + ')' : 'Public: no token needed'),
      o.op.operationId ? el('div', { class: 'muted mono', text: 'operationId ' + o.op.operationId }) : null,
      renderParams(params),
      renderBody(o.op.requestBody),
      renderResponses(o.op.responses),
      renderTry(o));
  }

  function render() {
    $('version').textContent = 'v' + doc.info.version + ' · OpenAPI ' + doc.openapi;
    $('description').textContent = doc.info.description || '';
    const ops = operations();
    const groups = new Map();
    for (const o of ops) {
      const tag = (o.op.tags && o.op.tags[0]) || 'other';
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag).push(o);
    }
    const toc = $('toc');
    for (const [tag, list] of groups) {
      toc.append(el('h3', { text: tag }));
      for (const o of list) {
        toc.append(el('a', { href: '#' + anchor(o) }, el('span', { class: 'method m-' + o.method, text: o.method }), pathEl('mono', o.path)));
      }
    }
    $('ops').replaceChildren(...ops.map(renderOp));
    document.body.dataset.loaded = String(ops.length);
    if (location.hash) { const t = document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); }
  }

  fetch('/openapi.json', { headers: { accept: 'application/json' } })
    .then((res) => { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
    .then((d) => { doc = d; render(); })
    .catch((err) => { $('description').textContent = 'Could not load /openapi.json: ' + err.message; });
`);

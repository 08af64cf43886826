/**
 * What the two HTML pages (`/` and `/docs`) share: a per-response CSP nonce, the security
 * headers, the page shell and the base stylesheet. The pages are self-contained: inline CSS and
 * JavaScript allowed by the nonce only, no external resources, requests to this origin only.
 */

/** A fresh CSP nonce (128 random bits, base64). */
export function newNonce(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes));
}

export function contentSecurityPolicy(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export function pageHeaders(nonce: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'content-security-policy': contentSecurityPolicy(nonce),
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-store',
  };
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ESCAPES[ch]!);
}

/**
 * A page's script: `body` in a strict-mode IIFE, after the helpers both pages use: `$` (an element
 * by id), TOKEN_KEY (where the token is kept in sessionStorage) and `el` (an element with
 * attributes and children; null, undefined and false children are left out).
 */
export function pageScript(body: string): string {
  return `
'use strict';
(() => {
${SCRIPT_HELPERS}${body}})();
`;
}

const SCRIPT_HELPERS = String.raw`
  const $ = (id) => document.getElementById(id);
  const TOKEN_KEY = 'heimdex.token';

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
    return node;
  }
`;

export interface Shell {
  nonce: string;
  title: string;
  /** Attributes for <body>, e.g. data-* flags the script reads (values are escaped). */
  data?: Record<string, string>;
  css: string;
  body: string;
  script: string;
}

export function renderShell(p: Shell): string {
  const data = Object.entries(p.data ?? {})
    .map(([k, v]) => ` data-${k}="${escapeHtml(v)}"`)
    .join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(p.title)}</title>
<link rel="icon" href="data:,">
<style nonce="${p.nonce}">${BASE_CSS}${p.css}</style>
</head>
<body${data}>
${p.body}
<script nonce="${p.nonce}">${p.script}</script>
</body>
</html>
`;
}

const BASE_CSS = `
:root {
  --bg: #f6f7f9; --card: #fff; --ink: #1b1f24; --muted: #5b6470; --line: #dde1e6;
  --accent: #3151d3; --accent-ink: #fff; --ok: #137333; --warn: #a05a00; --bad: #b3261e;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  color-scheme: light;
}
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: var(--bg); color: var(--ink); }
header.top { display: flex; align-items: baseline; gap: 1.25rem; padding: .9rem 1.5rem;
  background: #11182d; color: #fff; }
header.top h1 { margin: 0; font-size: 1.2rem; letter-spacing: .02em; }
header.top nav { display: flex; gap: 1rem; }
header.top a { color: #c9d4ff; text-decoration: none; }
header.top a:hover { text-decoration: underline; }
header.top .tag { color: #9aa4bd; font-size: .85rem; }
main { max-width: 1120px; margin: 0 auto; padding: 1.25rem; }
section.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem 1.25rem; margin-bottom: 1rem; }
section.card > h2 { margin: 0 0 .75rem; font-size: 1.05rem; }
section.card > h2:not(:first-child) { margin-top: 1.25rem; }
label { display: block; font-size: .8rem; color: var(--muted); margin-bottom: .2rem; }
input, textarea, select { width: 100%; font: inherit; padding: .45rem .55rem; border: 1px solid var(--line);
  border-radius: 6px; background: #fff; color: var(--ink); }
textarea { resize: vertical; }
input:focus, textarea:focus { outline: 2px solid #9fb0f5; border-color: var(--accent); }
button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: var(--accent-ink); cursor: pointer; white-space: nowrap; }
button.secondary { background: #fff; color: var(--accent); }
button:disabled { opacity: .55; cursor: default; }
.mono, code { font-family: var(--mono); font-size: .85em; }
.muted { color: var(--muted); }
.row { display: flex; gap: .75rem; align-items: flex-end; flex-wrap: wrap; }
.row > .grow { flex: 1 1 14rem; }
.row > .narrow { flex: 0 0 7rem; }
table { width: 100%; border-collapse: collapse; font-size: .9rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; color: var(--muted); font-size: .8rem; }
.badge { display: inline-block; padding: .05rem .45rem; border-radius: 999px; font-size: .75rem;
  font-weight: 600; border: 1px solid currentColor; }
.status-SUCCEEDED { color: var(--ok); }
.status-FAILED { color: var(--bad); }
.status-QUEUED, .status-PROCESSING { color: var(--warn); }
.problem { border: 1px solid #f1b8b4; background: #fdf0ef; color: #5f1511; border-radius: 6px;
  padding: .6rem .8rem; margin-top: .75rem; }
.problem ul { margin: .3rem 0 0 1.1rem; padding: 0; }
.hidden { display: none !important; }
`;

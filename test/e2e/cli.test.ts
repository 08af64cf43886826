/**
 * `npx heimdex …` against the real stack, run as a user runs it (a child process through
 * scripts/heimdex.mjs, from the folder that holds the files): mint a token, ingest a small folder
 * (following its batches, never polling job by job), search (with each hit's paragraph read back
 * from the local file), read a job and a batch, delete, and ingest again after a delete (the
 * content comes back); and the one-line errors (exit 1, no stack trace) for a bad URL, an
 * unreachable server, a bad token and an unreadable file.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/procs.js';
import { REPO_ROOT } from '../../scripts/lib/stack.js';
import { startE2eStack } from '../helpers/e2e.js';
import { TEST_MODEL, assertTestModel } from '../helpers/paths.js';
import { testEnv } from '../helpers/stack.js';
import type { TestStack } from '../helpers/stack.js';

const CLI = path.join(REPO_ROOT, 'scripts/heimdex.mjs');

let stack: TestStack;
let dataDir: string;
let corpus: string;
let token: string;
const org = `cli-${Date.now().toString(36)}`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function heimdex(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        // The user's folder: asset ids are file paths relative to it (corpus/animals.txt).
        cwd: dataDir,
        env: {
          ...process.env,
          HEIMDEX_URL: stack.apiUrl,
          HEIMDEX_TOKEN: token ?? '',
          HEIMDEX_DATA_DIR: dataDir,
          DEV_JWT_SECRET: '',
          ...env,
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** The CLI's error contract: exit 1, one line on stderr, no stack trace, nothing on stdout. */
function expectOneLineError(run: Run, message: RegExp): void {
  expect(run.code).toBe(1);
  expect(run.stdout).toBe('');
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^heimdex: /);
  expect(lines[0]).toMatch(message);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  assertTestModel();
  stack = await startE2eStack('cli', { env: testEnv({ DEV_JWT_SECRET: '', EMBEDDER_TOKEN: '' }) });
  dataDir = stack.dataDir;
  corpus = path.join(dataDir, 'corpus');
  fs.mkdirSync(path.join(corpus, 'guides'), { recursive: true });
  fs.writeFileSync(
    path.join(corpus, 'animals.txt'),
    'A large furry dog is running in the park.\n\nThe cat sleeps on a warm windowsill all afternoon.\n',
  );
  fs.writeFileSync(
    path.join(corpus, 'guides', 'cooking.md'),
    '# Pasta\n\nBoil the spaghetti in salted water for nine minutes.\n',
  );
  fs.writeFileSync(
    path.join(corpus, 'finance.jsonl'),
    [
      { segment_id: 'rates', text: 'The central bank raised interest rates to fight inflation.' },
      { asset_id: 'weather', text: 'Heavy snowfall closed the mountain roads overnight.' },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n') + '\n',
  );
}, 240_000);

afterAll(async () => {
  await stack?.dispose();
}, 60_000);

/** How many requests the Worker has logged for `route` so far. */
function routeCount(route: string): number {
  const log = fs.readFileSync(stack.logs.worker, 'utf8');
  return log.split('\n').filter((l) => l.includes(`"route":"${route}"`)).length;
}

describe('the stack starts quietly', () => {
  // What `npm run dev` prints for the Worker: no Request.cf lookup trace when offline (as here),
  // the bindings table once (not again when the dev registry sees the Worker), no stack trace.
  it('wrangler dev prints no warning or stack trace, and its bindings table once', () => {
    const log = fs.readFileSync(stack.logs.worker, 'utf8');
    expect(log).not.toMatch(/Request\.cf|workers\.cloudflare\.com/);
    expect(log).not.toMatch(/\n\s+at \S/);
    expect(log).not.toMatch(/\[wrangler:warn\]|▲ \[WARNING\]/);
    expect(log.split('Your Worker has access to the following bindings').length - 1).toBe(1);
  });
});

describe('heimdex against the real stack', () => {
  it('mints a dev token from the dev stack secret file', async () => {
    const run = await heimdex(['token', '--org', org]);
    expect(run.code).toBe(0);
    token = run.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
  });

  it('ingests a folder: every job succeeds, followed batch by batch, with a summary and progress', async () => {
    const jobPolls = routeCount('/jobs/:job_id');
    const run = await heimdex(['ingest', 'corpus', '--batch-size', '2']);
    expect(run.stderr).toMatch(/embedding +\[#+\] 5\/5 100% .* job\/s +ETA 0s/);
    expect(run.code).toBe(0);
    // A markdown heading goes with its paragraph: cooking.md is one segment, not two.
    expect(run.stdout).toContain('read     3 files, 5 segments; sent in 3 requests');
    expect(run.stdout).toContain('jobs     5 (5 new, 0 already submitted with the same text)');
    expect(run.stdout).toContain('result   5 succeeded, 0 failed');
    await new Promise((r) => setTimeout(r, 500)); // the Worker's log is written asynchronously
    expect(routeCount('/jobs/:job_id')).toBe(jobPolls);
    expect(routeCount('/batches/:batch_id')).toBeGreaterThanOrEqual(3);
  });

  it('is idempotent: ingesting again maps every segment to its existing job', async () => {
    const run = await heimdex(['--json', '--quiet', 'ingest', 'corpus']);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const summary = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      files: 3,
      segments: 5,
      jobs: { total: 5, created: 0, existing: 5 },
      succeeded: 5,
      failed: 0,
      pending: 0,
      rejected: 0,
    });
  });

  it('finds an ingested paragraph by a paraphrase, and shows it from the local file', async () => {
    const run = await heimdex([
      'search',
      'A big hairy canine is jogging outdoors',
      '--limit',
      '3',
      '--mode',
      'dense',
    ]);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      `3 results (mode dense; score: cosine similarity; model ${TEST_MODEL}@1)`,
    );
    expect(lines[2]).toMatch(/^1 +0\.\d{3} +corpus\/animals\.txt \/ p1 /);
    expect(lines[3]).toBe('   corpus/animals.txt:1');
    expect(lines[4]).toBe('   │ A large furry dog is running in the park.');

    const json = await heimdex([
      '--json',
      'search',
      'interest rates and inflation',
      '--mode',
      'dense',
    ]);
    const body = JSON.parse(json.stdout) as {
      results: Array<{
        score: number;
        payload: { asset_id: string; segment_id: string };
        local?: { file: string; line: number; text: string; changed: boolean };
      }>;
    };
    expect(body.results[0]!.payload).toMatchObject({
      asset_id: 'corpus/finance.jsonl',
      segment_id: 'rates',
    });
    expect(body.results[0]!.score).toBeGreaterThan(0.5);
    expect(body.results[0]!.local).toEqual({
      file: 'corpus/finance.jsonl',
      line: 1,
      text: 'The central bank raised interest rates to fight inflation.',
      changed: false,
    });

    const only = await heimdex([
      '--json',
      'search',
      'pasta',
      '--asset',
      'corpus/guides/cooking.md',
    ]);
    const scoped = JSON.parse(only.stdout) as {
      results: Array<{
        payload: { asset_id: string; segment_id: string };
        local?: { text: string };
      }>;
    };
    expect(scoped.results.map((r) => [r.payload.asset_id, r.payload.segment_id])).toEqual([
      ['corpus/guides/cooking.md', 'p1'],
    ]);
    expect(scoped.results[0]!.local?.text).toBe(
      '# Pasta\n\nBoil the spaghetti in salted water for nine minutes.',
    );
  });

  it('says when the local file changed since it was ingested', async () => {
    const file = path.join(corpus, 'animals.txt');
    const before = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, before.replace('large', 'very large'));
    try {
      const run = await heimdex(['search', 'a dog in the park', '--limit', '1']);
      expect(run.stdout.split('\n')[3]).toBe(
        '   corpus/animals.txt:1  (changed since it was ingested)',
      );
    } finally {
      fs.writeFileSync(file, before);
    }
  });

  it('deletes a point and an asset; ingesting again brings them back', async () => {
    const search = await heimdex(['--json', 'search', 'snow on the roads', '--asset', 'weather']);
    const pointId = (JSON.parse(search.stdout) as { results: Array<{ point_id: string }> })
      .results[0]!.point_id;
    const point = await heimdex(['delete', '--point', pointId]);
    expect(point.code).toBe(0);
    expect(point.stdout.trim()).toBe(
      `deleted 1 vector and cancelled 0 unfinished jobs (point ${pointId})`,
    );

    const asset = await heimdex(['delete', '--asset', 'corpus/animals.txt']);
    expect(asset.code).toBe(0);
    expect(asset.stdout.trim()).toBe(
      'deleted 2 vectors and cancelled 0 unfinished jobs (asset corpus/animals.txt)',
    );
    for (const id of ['weather', 'corpus/animals.txt']) {
      const after = await heimdex(['--json', 'search', 'anything at all', '--asset', id]);
      expect(JSON.parse(after.stdout)).toMatchObject({ results: [], total: 0 });
    }
    const unknown = crypto.randomUUID();
    expectOneLineError(
      await heimdex(['delete', '--point', unknown]),
      /^heimdex: 404 not_found: point not found \(request id [\w-]+\)$/,
    );

    // The same files again: what was deleted is embedded anew, the rest is unchanged.
    const again = await heimdex(['-q', 'ingest', 'corpus']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('jobs     5 (3 new, 2 already submitted with the same text)');
    expect(again.stdout).toContain('result   5 succeeded, 0 failed');
    for (const [id, count] of [
      ['weather', 1],
      ['corpus/animals.txt', 2],
    ] as const) {
      const back = await heimdex(['--json', 'search', 'anything at all', '--asset', id]);
      expect((JSON.parse(back.stdout) as { total: number }).total).toBe(count);
    }
  });

  it('--asset NAME: one asset for a folder, which delete --asset NAME removes (as README shows)', async () => {
    fs.mkdirSync(path.join(dataDir, 'notes'));
    fs.writeFileSync(
      path.join(dataDir, 'notes', 'garden.md'),
      '# Roses\n\nPrune the roses in early spring.\n\nWater them at dawn.\n',
    );
    fs.writeFileSync(path.join(dataDir, 'notes', 'boat.txt'), 'The sailboat left the harbour.\n');
    const run = await heimdex(['-q', 'ingest', 'notes/', '--asset', 'notes']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('read     2 files, 3 segments; sent in 1 request');
    const found = await heimdex([
      'search',
      'prune the roses in spring',
      '--asset',
      'notes',
      '--mode',
      'dense',
    ]);
    const lines = found.stdout.split('\n');
    expect(lines[2]).toMatch(/^1 +0\.\d{3} +notes \/ notes\/garden\.md#p1 /);
    expect(lines.slice(3, 6)).toEqual(['   notes/garden.md:1', '   │ # Roses', '   │']);
    const del = await heimdex(['delete', '--asset', 'notes']);
    expect(del.stdout.trim()).toBe(
      'deleted 3 vectors and cancelled 0 unfinished jobs (asset notes)',
    );
  });

  it('reads a job by id, and a batch by its handle', async () => {
    fs.mkdirSync(path.join(dataDir, 'one'));
    fs.writeFileSync(
      path.join(dataDir, 'one', 'solo.txt'),
      'Submarines explore the deep ocean floor.',
    );
    const submitted = await heimdex(['--json', '-q', 'ingest', 'one', '--no-wait']);
    expect(submitted.code).toBe(0);
    const { batch_ids } = JSON.parse(submitted.stdout) as { batch_ids: string[] };
    expect(batch_ids).toHaveLength(1);
    const batch = await heimdex(['batch', batch_ids[0]!, '--wait']);
    expect(batch.code).toBe(0);
    expect(batch.stdout).toContain(
      'jobs     1: 0 queued, 0 processing, 1 succeeded, 0 failed (done)',
    );

    const found = await heimdex(['--json', 'search', 'deep sea', '--asset', 'one/solo.txt']);
    const hit = (JSON.parse(found.stdout) as { results: Array<{ payload: { job_id: string } }> })
      .results[0]!;
    const job = await heimdex(['job', hit.payload.job_id]);
    expect(job.code).toBe(0);
    expect(job.stdout).toMatch(/^status +SUCCEEDED$/m);
    expect(job.stdout).toMatch(/^asset_id +one\/solo\.txt$/m);
    expect(job.stdout).toMatch(/^result\.token_count +\d+$/m);

    expectOneLineError(
      await heimdex(['batch', crypto.randomUUID()]),
      /^heimdex: 404 not_found: batch not found/,
    );
  });
});

describe('heimdex errors: one line, exit 1', () => {
  it('for a bad URL', async () => {
    expectOneLineError(
      await heimdex(['search', 'x', '--url', 'localhost:8787']),
      /invalid --url "localhost:8787"/,
    );
  });

  it('for an unreachable server', async () => {
    const port = await freePort();
    expectOneLineError(
      await heimdex(['search', 'x', '--url', `http://127.0.0.1:${port}`]),
      new RegExp(
        `cannot reach the Heimdex API at http://127\\.0\\.0\\.1:${port}: connection refused`,
      ),
    );
  });

  it('for a bad token', async () => {
    const run = await heimdex(['search', 'x'], { HEIMDEX_TOKEN: `${token.slice(0, -4)}AAAA` });
    expectOneLineError(
      run,
      /the API rejected the token \(401 unauthorized: invalid or expired token\)/,
    );
  });

  it('for an unreadable file', async () => {
    const missing = path.join(dataDir, 'nope.txt');
    expectOneLineError(
      await heimdex(['ingest', missing]),
      new RegExp(`cannot read ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: no such file`),
    );
    const dir = path.join(dataDir, 'bad');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'broken.jsonl'), '{"text":"fine"}\n{"text": oops\n');
    expectOneLineError(await heimdex(['ingest', dir]), /broken\.jsonl:2: not valid JSON$/);
  });

  it('for a missing token', async () => {
    expectOneLineError(
      await heimdex(['job', 'x'], { HEIMDEX_TOKEN: '' }),
      /no token: pass --token/,
    );
  });
});

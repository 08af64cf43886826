/**
 * `npx heimdex …` against the real stack, run as a user runs it (a child process through
 * scripts/heimdex.mjs): mint a token, ingest a small folder, search, read a job, delete; and the
 * one-line errors (exit 1, no stack trace) for a bad URL, an unreachable server, a bad token and
 * an unreadable file.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/procs.js';
import { REPO_ROOT, startStack } from '../../scripts/lib/stack.js';
import type { Stack } from '../../scripts/lib/stack.js';
import { TEST_MODEL, assertTestModel } from '../helpers/paths.js';
import { testEnv } from '../helpers/stack.js';

const CLI = path.join(REPO_ROOT, 'scripts/heimdex.mjs');

let stack: Stack;
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
        cwd: REPO_ROOT,
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
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'heimdex-cli-'));
  fs.chmodSync(dataDir, 0o755);
  stack = await startStack({
    dataDir,
    env: testEnv({ DEV_JWT_SECRET: '', EMBEDDER_TOKEN: '' }),
    cronIntervalMs: 0,
  });
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
  await stack?.stop();
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe('heimdex against the real stack', () => {
  it('mints a dev token from the dev stack secret file', async () => {
    const run = await heimdex(['token', '--org', org]);
    expect(run.code).toBe(0);
    token = run.stdout.trim();
    expect(token.split('.')).toHaveLength(3);
  });

  it('ingests a folder: every job succeeds, with a summary and progress', async () => {
    const run = await heimdex(['ingest', corpus, '--batch-size', '2']);
    expect(run.stderr).toMatch(/embedding +\[#+\] 6\/6 100% .* job\/s +ETA 0s/);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('read     3 files, 6 segments; sent in 3 requests');
    expect(run.stdout).toContain('jobs     6 (6 new, 0 unchanged)');
    expect(run.stdout).toContain('result   6 succeeded, 0 failed');
  });

  it('is idempotent: ingesting again maps every segment to its existing job', async () => {
    const run = await heimdex(['--json', '--quiet', 'ingest', corpus]);
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    const summary = JSON.parse(run.stdout) as Record<string, unknown>;
    expect(summary).toMatchObject({
      files: 3,
      segments: 6,
      jobs: { total: 6, created: 0, existing: 6 },
      succeeded: 6,
      failed: 0,
      pending: 0,
      rejected: 0,
    });
  });

  it('finds an ingested paragraph by a paraphrase', async () => {
    const run = await heimdex(['search', 'A big hairy canine is jogging outdoors', '--limit', '3']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe(`3 results (model ${TEST_MODEL}@1)`);
    expect(lines[2]).toMatch(/^1 +0\.\d{3} +animals \/ p1 /);

    const json = await heimdex(['--json', 'search', 'interest rates and inflation']);
    const body = JSON.parse(json.stdout) as {
      results: Array<{ score: number; payload: { asset_id: string; segment_id: string } }>;
    };
    expect(body.results[0]!.payload).toMatchObject({ asset_id: 'finance', segment_id: 'rates' });
    expect(body.results[0]!.score).toBeGreaterThan(0.5);

    const only = await heimdex(['--json', 'search', 'pasta', '--asset', 'guides/cooking']);
    const scoped = JSON.parse(only.stdout) as { results: Array<{ payload: { asset_id: string } }> };
    expect(scoped.results.map((r) => r.payload.asset_id)).toEqual([
      'guides/cooking',
      'guides/cooking',
    ]);
  });

  it('deletes a point and an asset', async () => {
    const search = await heimdex(['--json', 'search', 'snow on the roads', '--asset', 'weather']);
    const pointId = (JSON.parse(search.stdout) as { results: Array<{ point_id: string }> })
      .results[0]!.point_id;
    const point = await heimdex(['delete', '--point', pointId]);
    expect(point.code).toBe(0);
    expect(point.stdout.trim()).toBe(
      `deleted 1 vector and cancelled 0 unfinished jobs (point ${pointId})`,
    );

    const asset = await heimdex(['delete', '--asset', 'animals']);
    expect(asset.code).toBe(0);
    expect(asset.stdout.trim()).toBe(
      'deleted 2 vectors and cancelled 0 unfinished jobs (asset animals)',
    );
    for (const id of ['weather', 'animals']) {
      const after = await heimdex(['--json', 'search', 'anything at all', '--asset', id]);
      expect(JSON.parse(after.stdout)).toMatchObject({ results: [], total: 0 });
    }
    const unknown = crypto.randomUUID();
    expectOneLineError(
      await heimdex(['delete', '--point', unknown]),
      /^heimdex: 404 not_found: point not found \(request id [\w-]+\)$/,
    );
  });

  it('reads a job by id', async () => {
    const dir = path.join(dataDir, 'one');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'solo.txt'), 'Submarines explore the deep ocean floor.');
    expect((await heimdex(['-q', 'ingest', dir])).code).toBe(0);
    const found = await heimdex(['--json', 'search', 'deep sea', '--asset', 'solo']);
    const hit = (JSON.parse(found.stdout) as { results: Array<{ payload: { job_id: string } }> })
      .results[0]!;
    const job = await heimdex(['job', hit.payload.job_id]);
    expect(job.code).toBe(0);
    expect(job.stdout).toMatch(/^status +SUCCEEDED$/m);
    expect(job.stdout).toMatch(/^asset_id +solo$/m);
    expect(job.stdout).toMatch(/^result\.token_count +\d+$/m);
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

import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEYWORD_KEY as KEYWORD_INDEX_KEY, TOKEN, modelDir, repoRoot, tempDir } from './helpers.js';

const MAIN = path.join(repoRoot, 'embedder/src/main.ts');

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `npm run embedder`'s command with `env`; `onLine` may act on stdout lines. */
function runMain(
  env: Record<string, string>,
  onLine?: (line: string, child: ReturnType<typeof spawn>) => void,
) {
  return new Promise<Exit>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      for (const line of chunk.split('\n')) if (line) onLine?.(line, child);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('npm run embedder (main.ts)', () => {
  it('refuses to start without EMBEDDER_TOKEN, with a plain message', async () => {
    const res = await runMain({});
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('Invalid embedder configuration');
    expect(res.stderr).toContain('EMBEDDER_TOKEN is required');
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('exits non-zero with a fix-it message when the model cannot be loaded', async () => {
    const dir = await tempDir('main-nomodel');
    try {
      const res = await runMain({
        EMBEDDER_TOKEN: TOKEN,
        KEYWORD_INDEX_KEY,
        EMBEDDING_MODEL_DIR: modelDir,
        EMBEDDING_MODEL_NAME: 'missing-model',
        VECTOR_DATA_DIR: dir.dir,
      });
      expect(res.code).toBe(1);
      expect(res.stderr.trim()).toMatch(
        /^Could not load embedding model "missing-model" from EMBEDDING_MODEL_DIR=/,
      );
      expect(res.stderr).not.toMatch(/\n\s+at /);
    } finally {
      await dir.remove();
    }
  });

  it('prints where it listens and stops cleanly on SIGTERM', async () => {
    const dir = await tempDir('main-ok');
    try {
      let url = '';
      let health = 0;
      const res = await runMain(
        {
          EMBEDDER_TOKEN: TOKEN,
          KEYWORD_INDEX_KEY,
          EMBEDDER_PORT: '0',
          EMBEDDING_MODEL_DIR: modelDir,
          EMBEDDING_MODEL_NAME: 'potion-base-2M',
          VECTOR_DATA_DIR: dir.dir,
        },
        (line, child) => {
          const match = /^embedder listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
          if (!match?.[1]) return;
          url = match[1];
          void fetch(`${url}/healthz`).then((r) => {
            health = r.status;
            child.kill('SIGTERM');
          });
        },
      );
      expect(url).not.toBe('');
      expect(health).toBe(200);
      expect(res.code).toBe(0);
      const logLines = res.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l));
      expect(logLines.map((l) => l.msg)).toEqual(
        expect.arrayContaining(['embedder started', 'embedder shutting down', 'embedder stopped']),
      );
    } finally {
      await dir.remove();
    }
  });
});

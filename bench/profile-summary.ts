/**
 * `tsx bench/profile-summary.ts <file.cpuprofile>…`: where an embedder's main (JavaScript) thread
 * spent its time, from the V8 CPU profiles `npm run bench -- --cpu-prof` writes under the work
 * dir: self time by component (package or source folder) and the top functions.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './lib/paths.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const COMPONENTS: [RegExp, string][] = [
  [/node_modules\/(@lancedb|apache-arrow)\//, 'LanceDB + Arrow (store writes/reads, JS side)'],
  [/node_modules\/@huggingface\/transformers\//, 'transformers.js (tokenizer, tensors)'],
  [/node_modules\/onnxruntime-(node|common)\//, 'onnxruntime-node binding'],
  [/node_modules\/zod\//, 'zod (request validation)'],
  [/node_modules\/(hono|@hono)\//, 'hono + node-server (HTTP)'],
  [/node_modules\/prom-client\//, 'prom-client (metrics)'],
  [/\/embedder\/src\//, 'embedder code (batcher, pooling, service)'],
  [/^node:/, 'Node internals (HTTP, streams, JSON)'],
];

function componentOf(frame: ProfileNode['callFrame']): string {
  if (frame.functionName === '(idle)') return '(idle)';
  if (frame.functionName === '(garbage collector)') return '(garbage collector)';
  if (frame.functionName === '(program)') return '(program: native, not attributed)';
  for (const [pattern, name] of COMPONENTS) if (pattern.test(frame.url)) return name;
  return frame.url === '' ? '(native / builtins)' : 'other';
}

function summarizeProfile(profile: CpuProfile): {
  totalMs: number;
  components: [string, number][];
  functions: [string, number][];
} {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  });
  const components = new Map<string, number>();
  const functions = new Map<string, number>();
  let totalMs = 0;
  for (const [id, ms] of self) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    totalMs += ms;
    const component = componentOf(frame);
    components.set(component, (components.get(component) ?? 0) + ms);
    if (!frame.functionName.startsWith('(')) {
      const file = frame.url
        .replace(/^.*node_modules\//, '')
        .replace(`${pathToFileURL(REPO_ROOT).href}/`, '')
        .replace(`${REPO_ROOT}/`, '');
      const key = `${frame.functionName || '(anonymous)'} ${file}:${frame.lineNumber + 1}`;
      functions.set(key, (functions.get(key) ?? 0) + ms);
    }
  }
  const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
  return { totalMs, components: sorted(components), functions: sorted(functions).slice(0, 15) };
}

function main(): void {
  const files = process.argv.slice(2);
  if (files.length === 0) {
    process.stderr.write('usage: tsx bench/profile-summary.ts <file.cpuprofile>…\n');
    process.exit(2);
  }
  for (const file of files) {
    const s = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
    const busy = s.totalMs - (s.components.find(([c]) => c === '(idle)')?.[1] ?? 0);
    process.stdout.write(
      `\n${file}\n  ${(s.totalMs / 1000).toFixed(1)} s profiled, main thread busy ${(busy / 1000).toFixed(1)} s\n`,
    );
    for (const [c, ms] of s.components) {
      process.stdout.write(
        `  ${(ms / 1000).toFixed(2).padStart(8)} s  ${((100 * ms) / s.totalMs).toFixed(1).padStart(5)}%  ${c}\n`,
      );
    }
    process.stdout.write('  top functions (self time):\n');
    for (const [f, ms] of s.functions) {
      process.stdout.write(`  ${(ms / 1000).toFixed(2).padStart(8)} s  ${f}\n`);
    }
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();

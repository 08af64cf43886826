import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './paths.js';

export interface MachineInfo {
  cpuModel: string;
  /** os.availableParallelism(): CPUs this process may use. */
  cores: number;
  logicalCpus: number;
  /** CPU feature flags relevant to onnxruntime's kernels. */
  cpuFlags: string[];
  memoryGiB: number;
  platform: string;
  arch: string;
  kernel: string;
  node: string;
  packages: Record<string, string>;
  git: { commit: string; dirty: boolean } | null;
}

function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(
      readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8'),
    ) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'missing';
  }
}

function cpuFlags(): string[] {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = /^flags\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
    const wanted = /^(avx|avx2|fma|avx512f|avx512bw|avx512_vnni|avx_vnni|avx512_bf16|amx_\w+)$/;
    return line.split(/\s+/).filter((f) => wanted.test(f));
  } catch {
    return [];
  }
}

function gitState(): MachineInfo['git'] {
  try {
    const git = (...args: string[]) =>
      execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    return { commit: git('rev-parse', 'HEAD'), dirty: git('status', '--porcelain') !== '' };
  } catch {
    return null;
  }
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    logicalCpus: cpus.length,
    cpuFlags: cpuFlags(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: os.platform(),
    arch: os.arch(),
    kernel: os.release(),
    node: process.version,
    packages: Object.fromEntries(
      ['@huggingface/transformers', 'onnxruntime-node', '@lancedb/lancedb', 'wrangler'].map((n) => [
        n,
        packageVersion(n),
      ]),
    ),
    git: gitState(),
  };
}

/** A file-name-safe machine label, e.g. `amd-epyc-2c`. */
export function machineSlug(m: MachineInfo): string {
  const cpu = m.cpuModel
    .toLowerCase()
    .replace(/\(r\)|\(tm\)|cpu|processor|@.*$/g, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${cpu || 'cpu'}-${m.cores}c`;
}

/**
 * CPU time of a process split by thread role, from /proc/<pid>/task/<tid>/{comm,stat}: the main
 * JavaScript thread (HTTP, JSON, validation, tokenization, pooling), LanceDB's Rust runtime
 * ("tokio-rt-worker": the vector store), and the rest (onnxruntime's inference threads, which
 * run on libuv workers and unnamed native threads, plus V8's GC helpers).
 */
import { readFileSync, readdirSync } from 'node:fs';

export interface ThreadCpu {
  main: number;
  store: number;
  inferenceAndOther: number;
  total: number;
}

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) in a /proc/<pid>[/task/<tid>]/stat line. */
function statCpuSeconds(stat: string): number {
  // Fields after the parenthesised name: state is field 3; utime and stime are 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** CPU seconds used so far by each thread role of process `pid`. */
export function threadCpu(pid: number): ThreadCpu {
  const out: ThreadCpu = { main: 0, store: 0, inferenceAndOther: 0, total: 0 };
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let comm: string;
    let stat: string;
    try {
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const seconds = statCpuSeconds(stat);
    if (tid === String(pid)) out.main += seconds;
    else if (comm.startsWith('tokio')) out.store += seconds;
    else out.inferenceAndOther += seconds;
    out.total += seconds;
  }
  return out;
}

export function threadCpuDelta(after: ThreadCpu, before: ThreadCpu, seconds: number): ThreadCpu {
  const per = (a: number, b: number) => Math.round(((a - b) / seconds) * 1000) / 1000;
  return {
    main: per(after.main, before.main),
    store: per(after.store, before.store),
    inferenceAndOther: per(after.inferenceAndOther, before.inferenceAndOther),
    total: per(after.total, before.total),
  };
}

/** CPU seconds all processes on the machine have spent busy (not idle or iowait), from /proc/stat. */
export function machineBusy(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - idle) / TICKS_PER_SECOND;
}

/** The local stack's processes that are not the embedder, told apart by their command line. */
export type StackProcess = 'workerd' | 'wrangler' | 'postgres';

/** Exported for tests: which stack process a /proc cmdline (NULs as spaces) belongs to. */
export function stackProcessOf(cmdline: string): StackProcess | null {
  const exe = cmdline.split(' ')[0] ?? '';
  if (exe.endsWith('/workerd')) return 'workerd';
  if (cmdline.includes('wrangler/bin/wrangler.js') || cmdline.includes('wrangler-dist'))
    return 'wrangler';
  if (exe.endsWith('/postgres') || exe === 'postgres' || cmdline.startsWith('postgres:'))
    return 'postgres';
  return null;
}

/**
 * CPU seconds used so far by the stack's workerd processes (wrangler dev runs two: its proxy
 * worker's and the user worker's), wrangler's Node process and PostgreSQL's processes.
 */
export function stackProcessCpu(): Record<StackProcess, number> {
  const out: Record<StackProcess, number> = { workerd: 0, wrangler: 0, postgres: 0 };
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const kind = stackProcessOf(cmdline);
      if (kind === null) continue;
      out[kind] += statCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8'));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

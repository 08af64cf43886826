/**
 * A small round-robin HTTP load balancer for tests: the Worker calls it as its EMBEDDER_URL and it
 * forwards each request, unchanged, to the next of several embedder replicas, as a load balancer in
 * production would. Requests are spread per path (every /internal/embed call goes to the next
 * replica, whatever searches ran in between), so a test knows which replica a write reaches.
 *
 * It records every request it forwarded (for /internal/embed, the items' job ids, seqs and
 * segments) and lets a test hold a request before it is forwarded, to make writes for one segment
 * reach the replicas in a chosen order.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface BalancedItem {
  job_id: string;
  seq: number;
  org_id: string;
  asset_id: string;
  segment_id: string;
}

export interface BalancedRequest {
  /** Arrival order, from 0. */
  n: number;
  method: string;
  path: string;
  /** Index of the replica it was sent to. */
  target: number;
  /** The items of an /internal/embed call (empty otherwise). */
  items: BalancedItem[];
  arrivedAt: number;
  forwardedAt?: number;
  answeredAt?: number;
  status?: number;
}

export interface Balancer {
  url: string;
  /** Every request so far, in arrival order. */
  readonly log: BalancedRequest[];
  /** Called before a request is forwarded; the request waits while the promise is pending. */
  beforeForward: ((req: BalancedRequest) => Promise<void> | void) | null;
  /** Resolves with the first answered request matching `pred` (also one answered already). */
  answered(pred: (req: BalancedRequest) => boolean, timeoutMs: number): Promise<BalancedRequest>;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host']);

function embedItems(path: string, body: Buffer): BalancedItem[] {
  if (path !== '/internal/embed' || body.length === 0) return [];
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { items?: BalancedItem[] };
    return (parsed.items ?? []).map((i) => ({
      job_id: i.job_id,
      seq: i.seq,
      org_id: i.org_id,
      asset_id: i.asset_id,
      segment_id: i.segment_id,
    }));
  } catch {
    return [];
  }
}

export async function startBalancer(targets: string[]): Promise<Balancer> {
  if (targets.length === 0) throw new Error('a balancer needs at least one target');
  const log: BalancedRequest[] = [];
  const next = new Map<string, number>();
  const waiters = new Set<() => void>();
  let server: Server | null = null;

  const balancer: Balancer = {
    url: '',
    log,
    beforeForward: null,
    answered(pred, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = log.find((r) => r.answeredAt !== undefined && pred(r));
          if (!hit) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching request was answered within ${timeoutMs} ms`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    async close() {
      server?.closeAllConnections();
      await new Promise((resolve) => server?.close(resolve));
    },
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const path = new URL(req.url ?? '/', 'http://balancer').pathname;
    const turn = next.get(path) ?? 0;
    next.set(path, turn + 1);
    const entry: BalancedRequest = {
      n: log.length,
      method: req.method ?? 'GET',
      path,
      target: turn % targets.length,
      items: embedItems(path, body),
      arrivedAt: Date.now(),
    };
    log.push(entry);
    try {
      await balancer.beforeForward?.(entry);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (HOP_BY_HOP.has(k) || v === undefined) continue;
        headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      }
      entry.forwardedAt = Date.now();
      const upstream = await fetch(`${targets[entry.target]}${req.url ?? '/'}`, {
        method: entry.method,
        headers,
        body: body.length > 0 ? body : undefined,
      });
      const answer = Buffer.from(await upstream.arrayBuffer());
      const out: Record<string, string> = {};
      upstream.headers.forEach((v, k) => {
        if (!HOP_BY_HOP.has(k) && k !== 'content-length' && k !== 'content-encoding') out[k] = v;
      });
      res.writeHead(upstream.status, out);
      res.end(answer);
      entry.status = upstream.status;
    } catch {
      // The replica could not be reached: what a load balancer answers then.
      res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('bad gateway');
      entry.status = 502;
    }
    entry.answeredAt = Date.now();
    for (const w of [...waiters]) w();
  };

  server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  balancer.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return balancer;
}

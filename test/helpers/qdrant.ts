/**
 * A live Qdrant for the end-to-end and reliability suites. The embedded store (LanceDB) is what
 * every test stack uses by default; HEIMDEX_TEST_QDRANT_URL (and HEIMDEX_TEST_QDRANT_API_KEY)
 * point the stacks' embedders at a Qdrant instead, each stack in a collection of its own, e.g.
 *
 *   HEIMDEX_TEST_QDRANT_URL=http://127.0.0.1:6333 npm run test:reliability
 *
 * The suites' direct reads of the store (VectorProbe) then read that collection over REST. When
 * that Qdrant runs on this machine, HEIMDEX_TEST_QDRANT_STORAGE (its storage path) lets the suites
 * scan the collection's files on disk, as they scan LanceDB's folder (no text may be in them).
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { StoredPoint } from './vectors.js';

export interface TestQdrant {
  url: string;
  apiKey: string | undefined;
  /** Qdrant's storage path, when it is on this machine. */
  storage: string | undefined;
}

/** The Qdrant the suites should use, or null for the embedded default. */
export function testQdrant(): TestQdrant | null {
  const url = process.env.HEIMDEX_TEST_QDRANT_URL?.trim().replace(/\/+$/, '');
  if (!url) return null;
  return {
    url,
    apiKey: process.env.HEIMDEX_TEST_QDRANT_API_KEY || undefined,
    storage: process.env.HEIMDEX_TEST_QDRANT_STORAGE || undefined,
  };
}

/** A collection name no other stack or run uses. */
export function newTestCollection(): string {
  return `heimdex_test_${randomUUID().replaceAll('-', '')}`;
}

/** The collection's folder in Qdrant's storage (when known): the stack's "vector data dir". */
export function collectionDir(q: TestQdrant, collection: string): string | undefined {
  return q.storage ? path.join(q.storage, 'collections', collection) : undefined;
}

async function call<T>(
  q: TestQdrant,
  method: string,
  pathname: string,
  body?: unknown,
): Promise<{ status: number; result: T }> {
  const res = await fetch(`${q.url}${pathname}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(q.apiKey ? { 'api-key': q.apiKey } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const json = (await res.json().catch(() => ({}))) as { result?: T; status?: unknown };
  if (!res.ok && res.status !== 404) {
    throw new Error(`Qdrant ${method} ${pathname}: ${res.status} ${JSON.stringify(json.status)}`);
  }
  return { status: res.status, result: json.result as T };
}

/** Deletes a test collection (a missing one is fine). */
export async function dropCollection(q: TestQdrant, collection: string): Promise<void> {
  await call(q, 'DELETE', `/collections/${encodeURIComponent(collection)}`);
}

/** Reads one collection's points the way VectorProbe reads LanceDB: per tenant, no vectors. */
export class QdrantProbe {
  constructor(
    private readonly q: TestQdrant,
    readonly collection: string,
  ) {}

  private get base(): string {
    return `/collections/${encodeURIComponent(this.collection)}/points`;
  }

  private orgFilter(org: string) {
    return { must: [{ key: 'org_id', match: { value: org } }] };
  }

  async count(org: string): Promise<number> {
    const { status, result } = await call<{ count: number }>(this.q, 'POST', `${this.base}/count`, {
      filter: this.orgFilter(org),
      exact: true,
    });
    // No collection yet: nothing was ever written.
    return status === 404 ? 0 : result.count;
  }

  async points(org: string): Promise<StoredPoint[]> {
    const out: StoredPoint[] = [];
    let offset: unknown = null;
    do {
      const { status, result } = await call<{
        points: Array<{ id: string; payload: Record<string, unknown> }>;
        next_page_offset: unknown;
      }>(this.q, 'POST', `${this.base}/scroll`, {
        filter: this.orgFilter(org),
        limit: 256,
        ...(offset === null ? {} : { offset }),
        with_payload: ['org_id', 'asset_id', 'segment_id', 'job_id', 'seq'],
        with_vector: false,
      });
      if (status === 404) return [];
      for (const p of result.points) {
        out.push({
          id: String(p.id),
          org_id: String(p.payload.org_id),
          asset_id: String(p.payload.asset_id),
          segment_id: String(p.payload.segment_id),
          job_id: String(p.payload.job_id),
          seq: Number(p.payload.seq),
        });
      }
      offset = result.next_page_offset ?? null;
    } while (offset !== null);
    return out;
  }
}

/** Which stack's vector folder stands for which Qdrant collection (see VectorProbe). */
const probeTargets = new Map<string, QdrantProbe>();

export function registerQdrantProbe(vectorDataDir: string, probe: QdrantProbe): void {
  probeTargets.set(path.resolve(vectorDataDir), probe);
}

export function qdrantProbeFor(vectorDataDir: string): QdrantProbe | undefined {
  return probeTargets.get(path.resolve(vectorDataDir));
}

/**
 * Every authenticated route of the public API, in one table. The auth matrix (auth.test.ts) and the
 * cross-tenant suite (tenancy.test.ts) both run against every entry, so a new route cannot be
 * added without its auth and isolation cases: `ROUTE_COVERAGE` in tenancy.test.ts checks the table
 * against the routes the app actually serves.
 */
import { expect } from 'vitest';
import { call, expectProblem } from './helpers';

/** What the owner (org A) has, created once through the real queue and embedder. */
export interface OwnerFixture {
  org: string;
  token: string;
  asset: string;
  segment: string;
  text: string;
  jobId: string;
  pointId: string;
  /** The batch that submitted the owner's job. */
  batchId: string;
}

export interface RouteCase {
  method: 'GET' | 'POST' | 'DELETE';
  /** The OpenAPI path template, e.g. `/jobs/{job_id}`. */
  template: string;
  /** A request against the owner's resources (path and body). */
  request(owner: OwnerFixture): { path: string; body?: unknown };
  /**
   * What another org's valid token must see for that same request: nothing of the owner's, and
   * no change to it. Runs after the intruder's request.
   */
  expectIsolated(res: Response, owner: OwnerFixture): Promise<void>;
}

export const ROUTES: RouteCase[] = [
  {
    method: 'POST',
    template: '/vectors/embed',
    request: (o) => ({
      path: '/vectors/embed',
      body: { asset_id: o.asset, segment_id: o.segment, text: o.text },
    }),
    // Idempotency keys are per tenant: the same body makes the intruder a job of its own.
    async expectIsolated(res, o) {
      expect(res.status).toBe(202);
      expect(((await res.json()) as { job_id: string }).job_id).not.toBe(o.jobId);
    },
  },
  {
    method: 'POST',
    template: '/vectors/embed/batch',
    request: (o) => ({
      path: '/vectors/embed/batch',
      body: { asset_id: o.asset, segments: [{ segment_id: o.segment, text: o.text }] },
    }),
    async expectIsolated(res, o) {
      expect(res.status).toBe(202);
      const { jobs } = (await res.json()) as { jobs: Array<{ job_id: string }> };
      expect(jobs.map((j) => j.job_id)).not.toContain(o.jobId);
    },
  },
  {
    method: 'POST',
    template: '/vectors/search',
    request: (o) => ({ path: '/vectors/search', body: { query_text: o.text, limit: 100 } }),
    async expectIsolated(res, o) {
      expect(res.status).toBe(200);
      const body = (await res.json()) as { results: Array<{ point_id: string }>; total: number };
      expect(body.results.map((r) => r.point_id)).not.toContain(o.pointId);
    },
  },
  {
    method: 'GET',
    template: '/jobs/{job_id}',
    request: (o) => ({ path: `/jobs/${o.jobId}` }),
    expectIsolated: async (res) => void (await expectProblem(res, 404, 'not_found')),
  },
  {
    method: 'GET',
    template: '/batches/{batch_id}',
    request: (o) => ({ path: `/batches/${o.batchId}` }),
    expectIsolated: async (res) => void (await expectProblem(res, 404, 'not_found')),
  },
  {
    method: 'DELETE',
    template: '/vectors/points/{point_id}',
    request: (o) => ({ path: `/vectors/points/${o.pointId}` }),
    expectIsolated: async (res) => void (await expectProblem(res, 404, 'not_found')),
  },
  {
    method: 'DELETE',
    template: '/vectors/assets/{asset_id}',
    request: (o) => ({ path: `/vectors/assets/${encodeURIComponent(o.asset)}` }),
    async expectIsolated(res) {
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ deleted: 0, cancelled_jobs: 0 });
    },
  },
];

/** Runs `route`'s request with the given Authorization header (or none). */
export function callRoute(
  route: RouteCase,
  owner: OwnerFixture,
  authorization: string | undefined,
): Promise<Response> {
  const { path, body } = route.request(owner);
  return call(route.method, path, {
    body,
    headers: authorization ? { authorization } : {},
  });
}

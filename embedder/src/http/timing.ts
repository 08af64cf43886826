import type { Context, MiddlewareHandler } from 'hono';
import type { Counter, Histogram } from 'prom-client';
import type { Timing } from '../core/service.js';
import type { AppEnv } from './context.js';

/**
 * TEI-style timing headers, in milliseconds: `x-tokenization-time`, `x-queue-time` (waiting for a
 * forward pass), `x-inference-time` (the passes that carried the request) and `x-total-time`
 * (the whole request, store included).
 */
export function setTimingHeaders(c: Context<AppEnv>, timing: Timing): void {
  const ms = (value: number): string => String(Math.round(value * 1000) / 1000);
  c.header('x-tokenization-time', ms(timing.tokenizationMs));
  c.header('x-queue-time', ms(timing.queueMs));
  c.header('x-inference-time', ms(timing.inferenceMs));
  c.header('x-total-time', ms(performance.now() - c.get('startedAt')));
}

/** Counts a route's requests by status and failures by problem code, and times them. */
export function observeRoute(metrics: {
  requests: Counter<'status'>;
  duration: Histogram;
  errors: Counter<'code'>;
}): MiddlewareHandler<AppEnv> {
  return async function observeRouteMiddleware(c, next) {
    const started = performance.now();
    await next();
    const status = c.res.status;
    metrics.requests.inc({ status: String(status) });
    metrics.duration.observe((performance.now() - started) / 1000);
    if (status >= 400) metrics.errors.inc({ code: c.get('problemCode') ?? `http_${status}` });
  };
}

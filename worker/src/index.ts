/**
 * The Worker's entry points: each a thin wrapper over an exported function that tests call directly.
 */
import { createApp } from './app';
import type { Env } from './env';
import { parseConfig } from './env';
import { withInvocation } from './lib/invocation';
import { handleDeadLetters, handleEmbedBatch } from './queue/consumer';
import { pruneBatches } from './services/jobs';
import { sweep } from './services/outbox';

export const app = createApp();

export async function runScheduled(env: Env): Promise<number> {
  return withInvocation(env, { task: 'outbox-sweep' }, async ({ config, log, db }) => {
    const sent = await sweep(db, env.EMBED_QUEUE, config, log);
    if (sent > 0) log.info('outbox sweep re-sent rows', { rows: sent });
    const pruned = await pruneBatches(db);
    if (pruned > 0) log.info('batch handles expired', { rows: pruned });
    return sent;
  });
}

export default {
  fetch: app.fetch,
  async queue(batch, env, ctx) {
    if (batch.queue === parseConfig(env).dlqQueueName) await handleDeadLetters(batch, env, ctx);
    else await handleEmbedBatch(batch, env, ctx);
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runScheduled(env));
  },
} satisfies ExportedHandler<Env, unknown>;

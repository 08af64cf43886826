/**
 * The Worker's entry points: each a thin wrapper over an exported function that tests call directly.
 */
import { createApp } from './app';
import type { Env } from './env';
import { parseConfig } from './env';
import { openDb } from './lib/db';
import { createLogger } from './lib/log';
import { handleDeadLetters, handleEmbedBatch } from './queue/consumer';
import { pruneBatches } from './services/jobs';
import { sweep } from './services/outbox';

export const app = createApp();

export async function runScheduled(env: Env): Promise<number> {
  const config = parseConfig(env);
  const log = createLogger(config.logLevel, { task: 'outbox-sweep' });
  const { db, close } = openDb(config);
  try {
    const sent = await sweep(db, env.EMBED_QUEUE, config, log);
    if (sent > 0) log.info('outbox sweep re-sent rows', { rows: sent });
    const pruned = await pruneBatches(db);
    if (pruned > 0) log.info('batch handles expired', { rows: pruned });
    return sent;
  } finally {
    await close().catch(() => undefined);
  }
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

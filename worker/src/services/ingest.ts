/**
 * Ingest, shared by `POST /vectors/embed` and `POST /vectors/embed/batch`: refuse models the
 * embedder does not serve, encrypt the texts, record jobs + outbox rows in one transaction, then
 * send the new rows to the Queue (the cron sweep re-sends what this send leaves behind).
 */
import type { AppVariables } from '../middleware/context';
import { textCipher } from '../lib/text-cipher';
import { AppError, invalidRequestDetail } from '../errors';
import { submitJobs } from './jobs';
import type { SubmittedJob } from './jobs';
import { relay } from './outbox';
import { unservedModels } from './models';

export interface IngestItem {
  assetId: string;
  segmentId: string;
  text: string;
  /** The request's own model fields (undefined: the Worker's default). */
  model?: string;
  modelVer?: string;
  /** Dotted path of the item in the request, '' for the body itself (for field errors). */
  path: string;
}

export async function ingest(
  vars: AppVariables,
  queue: Queue<unknown>,
  items: IngestItem[],
  options: { batchId?: string } = {},
): Promise<SubmittedJob[]> {
  const { config, auth, requestId, log } = vars;
  const jobs = items.map((item) => ({
    orgId: auth.orgId,
    assetId: item.assetId,
    segmentId: item.segmentId,
    model: item.model ?? config.model.name,
    modelVer: item.modelVer ?? config.model.ver,
    text: item.text,
  }));
  const refused = await unservedModels(
    vars.embedder(),
    config.embedder.url,
    items.map((item, i) => ({
      model: jobs[i]!.model,
      modelVer: jobs[i]!.modelVer,
      given: { model: item.model, model_ver: item.modelVer },
      path: item.path,
    })),
  );
  if (refused.length > 0) {
    throw new AppError('validation_failed', invalidRequestDetail(refused), { errors: refused });
  }
  const db = vars.db();
  const cipher = await textCipher(config.textKeys.current, config.textKeys.previous);
  const { jobs: submitted, pending } = await submitJobs(db, cipher, jobs, requestId, options);
  await relay(db, queue, config, log, pending);
  return submitted;
}

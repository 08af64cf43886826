/**
 * Ingest, shared by `POST /vectors/embed` and `POST /vectors/embed/batch`: refuse models the
 * embedder does not serve, resolve each text's chunking, encrypt the texts, record jobs + outbox
 * rows in one transaction, then send the new rows to the Queue (the cron sweep re-sends what this
 * send leaves behind).
 */
import type { Chunking } from '../../../contract/internal';
import type { AppVariables } from '../middleware/context';
import { textCipher } from '../lib/text-cipher';
import { AppError, invalidRequestDetail } from '../errors';
import { canonicalChunking } from '../lib/hash';
import { MessageTooLargeError, submitJobs } from './jobs';
import type { SubmittedJob } from './jobs';
import { relay } from './outbox';
import { unservedModels } from './models';
import { getOrgSettings } from './settings';

export interface IngestItem {
  assetId: string;
  segmentId: string;
  text: string;
  /** The request's own model fields (undefined: the Worker's default). */
  model?: string;
  modelVer?: string;
  /** The request's chunking (the segment's, else the batch's); undefined: the organisation's. */
  chunking?: Chunking;
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
  const models = items.map((item) => ({
    model: item.model ?? config.model.name,
    modelVer: item.modelVer ?? config.model.ver,
  }));
  const refused = await unservedModels(
    vars.embedder(),
    config.embedder.url,
    items.map((item, i) => ({
      model: models[i]!.model,
      modelVer: models[i]!.modelVer,
      given: { model: item.model, model_ver: item.modelVer },
      path: item.path,
    })),
  );
  if (refused.length > 0) {
    throw new AppError('validation_failed', invalidRequestDetail(refused), { errors: refused });
  }
  const db = vars.db();
  // Chunking: the request's (segment > batch), else the organisation's setting, else none (the
  // embedder's default). The setting is read only when some text names none.
  const orgChunking = items.every((item) => item.chunking !== undefined)
    ? null
    : (await getOrgSettings(db, auth.orgId)).chunking;
  const jobs = items.map((item, i) => {
    const chunking = item.chunking ?? orgChunking ?? undefined;
    return {
      orgId: auth.orgId,
      assetId: item.assetId,
      segmentId: item.segmentId,
      ...models[i]!,
      text: item.text,
      ...(chunking !== undefined ? { chunking: canonicalChunking(chunking) } : {}),
    };
  });
  const cipher = await textCipher(config.textKeys.current, config.textKeys.previous);
  let submission;
  try {
    submission = await submitJobs(db, cipher, jobs, requestId, options);
  } catch (err) {
    if (!(err instanceof MessageTooLargeError)) throw err;
    // Only a very long configured model name can leave less room than MAX_TEXT_BYTES assumes.
    const field = items[err.index]!.path ? `${items[err.index]!.path}.text` : 'text';
    throw new AppError('payload_too_large', `${field} does not fit in one queue message`, {
      errors: [
        {
          field,
          pointer: '/' + field.split('.').join('/'),
          message: `its queue message would be ${err.bytes} bytes (at most ${err.limit})`,
        },
      ],
    });
  }
  await relay(db, queue, config, log, submission.pending);
  return submission.jobs;
}

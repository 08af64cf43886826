/**
 * Which (model, model_ver) pairs the embedder serves, so that a job for one it does not serve is
 * refused at submission (400 naming the field) instead of failing later with `unknown_model`.
 *
 * The view is cached per isolate for CACHE_TTL_MS. A pair missing from a view older than
 * REFRESH_AFTER_MS is checked against a fresh view before it is refused, so a model the embedder
 * has started serving since is never refused by a stale cache. When the embedder cannot be asked,
 * nothing is refused: ingestion does not depend on the embedder being up (the queue retries), and
 * such a job fails with `unknown_model` later if its model really is not served.
 */
import type { FieldError } from '../errors';
import type { EmbedderClient, ServedModels } from './embedder';

const CACHE_TTL_MS = 60_000;
const REFRESH_AFTER_MS = 1_000;

const cache = new Map<string, { view: ServedModels; at: number }>();

export interface RequestedModel {
  model: string;
  modelVer: string;
  /** The request's own fields (undefined when the item left them to the defaults). */
  given: { model?: string; model_ver?: string };
  /** Dotted path of the item, '' for the body itself (e.g. `segments.3`). */
  path: string;
}

const served = (view: ServedModels, m: RequestedModel): boolean =>
  view.models.some((s) => s.name === m.model && s.model_ver === m.modelVer);

async function refresh(
  client: Pick<EmbedderClient, 'models'>,
  key: string,
): Promise<ServedModels | null> {
  try {
    const view = await client.models();
    cache.set(key, { view, at: Date.now() });
    return view;
  } catch {
    return null;
  }
}

/** Field errors for the requested models the embedder does not serve (none when unsure). */
export async function unservedModels(
  client: Pick<EmbedderClient, 'models'>,
  embedderUrl: string,
  requested: RequestedModel[],
): Promise<FieldError[]> {
  // Only what the client chose is checked: the Worker's own defaults are its operator's concern.
  const chosen = requested.filter(
    (r) => r.given.model !== undefined || r.given.model_ver !== undefined,
  );
  if (chosen.length === 0) return [];
  const cached = cache.get(embedderUrl);
  const age = cached ? Date.now() - cached.at : Infinity;
  const stale =
    age >= CACHE_TTL_MS ||
    (age >= REFRESH_AFTER_MS && chosen.some((r) => !served(cached!.view, r)));
  const view = stale ? await refresh(client, embedderUrl) : cached!.view;
  if (!view) return [];
  const list = view.models.map((s) => `${s.name} (model_ver "${s.model_ver}")`).join(', ');
  return chosen
    .filter((r) => !served(view, r))
    .map((r) => {
      const nameServed = view.models.some((s) => s.name === r.model);
      const key = nameServed ? 'model_ver' : 'model';
      const path = r.path ? `${r.path}.${key}` : key;
      return {
        field: path,
        pointer: '/' + path.split('.').join('/'),
        message: nameServed
          ? `model_ver "${r.modelVer}" of ${r.model} is not served; served: ${list}`
          : `model "${r.model}" is not served; served: ${list}`,
      };
    });
}

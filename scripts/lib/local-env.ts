/** The environment a stack of local parts is started with (scripts/lib/stack.ts's startStack). */

/** The model a local stack's embedder serves. */
export interface LocalModel {
  /** EMBEDDING_MODEL_DIR: the folder the model is loaded from. */
  dir: string;
  /** EMBEDDING_MODEL_NAME. */
  name: string;
  /** EMBEDDING_DTYPE (default: the embedder's). */
  dtype?: string;
}

/**
 * process.env for a stack whose database and embedder are local (DATABASE_URL and EMBEDDER_URL
 * cleared), serving `model` at version 1; `extra` comes last and wins.
 */
export function localStackEnv(model: LocalModel, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DATABASE_URL: '',
    EMBEDDER_URL: '',
    EMBEDDING_MODEL_DIR: model.dir,
    EMBEDDING_MODEL_NAME: model.name,
    EMBEDDING_MODEL_VER: '1',
    ...(model.dtype === undefined ? {} : { EMBEDDING_DTYPE: model.dtype }),
    ...extra,
  };
}

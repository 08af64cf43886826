import type { Hono } from 'hono';
import { EmbeddingsRequest, float32ToBase64 } from '../../../../contract/openai.js';
import type { EmbeddingsResponse, EncodingFormat } from '../../../../contract/openai.js';
import type { Embeddings, EmbeddingsResult } from '../../core/embeddings.js';
import type { AppEnv } from '../context.js';
import { setTimingHeaders } from '../timing.js';
import { readJson } from '../validate.js';

/**
 * POST /v1/embeddings: OpenAI's embeddings protocol (contract/openai.ts), behind the service
 * credential like /internal (it is the API key an OpenAI client sends). The vectors are the ones
 * search embeds a query with; nothing is stored. 400 naming `model` for a model not served here,
 * `dimensions` for another size than the model's, 422 naming `input[i]` for an input without a
 * known token, 429 + Retry-After when the queue is full; timing headers as embed and search.
 * Problems carry OpenAI's `error` object beside the RFC 9457 members.
 */
export function registerOpenAi(app: Hono<AppEnv>, embeddings: Embeddings): void {
  app.post('/v1/embeddings', async (c) => {
    const body = await readJson(c, EmbeddingsRequest);
    c.set('itemCount', typeof body.input === 'string' ? 1 : body.input.length);
    const { result, timing } = await embeddings.embed(
      {
        input: body.input,
        model: body.model,
        ...(body.dimensions === undefined || body.dimensions === null
          ? {}
          : { dimensions: body.dimensions }),
      },
      { signal: c.req.raw.signal },
    );
    setTimingHeaders(c, timing);
    return c.json(embeddingsResponse(result, body.encoding_format ?? 'float'), 200);
  });
}

export function embeddingsResponse(
  result: EmbeddingsResult,
  format: EncodingFormat,
): EmbeddingsResponse {
  return {
    object: 'list',
    data: result.vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: format === 'base64' ? float32ToBase64(vector) : Array.from(vector),
    })),
    model: result.model,
    usage: {
      prompt_tokens: result.promptTokens,
      total_tokens: result.promptTokens,
      truncated_inputs: result.truncatedInputs,
    },
  };
}

/**
 * OpenAI's embeddings protocol (`POST /v1/embeddings`), written once. The Worker serves it to
 * tenants and forwards each request to the embedder, which serves the same protocol itself (with
 * its service credential as the API key), so one schema validates the request on both sides and
 * the Worker parses the embedder's answer with the response schema below. Plain zod with `.meta()`
 * documentation, which the Worker's OpenAPI document picks up.
 *
 * Heimdex's extensions, which OpenAI clients ignore: `usage.truncated_inputs` (how many inputs
 * were longer than the model's window and were cut to it, as ingestion cuts them), and on errors
 * the RFC 9457 problem members beside OpenAI's `error` object (see `openAiError`).
 */
import { z } from 'zod';
import type { ProblemBody } from './problems.js';
import { ModelName, Text } from './rules.js';

/** Inputs of one request (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

/**
 * The largest body of a POST /v1/embeddings, on the Worker and on the embedder (its body limit,
 * 8 MiB, as for /internal). Beyond it: 413 naming `input`.
 */
export const EMBEDDINGS_MAX_BODY_BYTES = 8 * 1024 * 1024;

/**
 * The most input the Worker takes in one request: the inputs' JSON (UTF-8, as the Worker forwards
 * them to the embedder), 4 MiB. Half the embedder's body limit, so what the Worker forwards always
 * fits it; the rest of the Worker's body limit leaves room for clients that escape non-ASCII text
 * (`\u00e9`: 6 bytes for 2). Beyond it: 413 naming `input`.
 */
export const EMBEDDINGS_MAX_INPUT_BYTES = 4 * 1024 * 1024;

export const ENCODING_FORMATS = ['float', 'base64'] as const;
export type EncodingFormat = (typeof ENCODING_FORMATS)[number];

const TOKEN_IDS_REFUSED =
  'token-id arrays are not accepted: Heimdex tokenizes text for its own models; send input as a ' +
  'string or an array of strings';

/** An array of token ids, or of arrays of them (OpenAI's pre-tokenized input forms). */
function isTokenIds(value: unknown): boolean {
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.every(
      (v) => typeof v === 'number' || (Array.isArray(v) && v.every((n) => typeof n === 'number')),
    )
  );
}

const INPUT_DESCRIPTION =
  `The text to embed, or an array of 1 to ${MAX_EMBEDDING_INPUTS} texts (one vector each, in ` +
  'order). Each: non-empty, not blank, no NUL, well-formed Unicode. Token-id arrays are refused ' +
  "(400 naming `input`). A text longer than the model's window is truncated to it (its first " +
  'window, exactly as ingestion truncates and as search embeds a query); `usage.truncated_inputs` ' +
  'counts them.';

/**
 * `input`: a string or 1..MAX_EMBEDDING_INPUTS strings. Token ids are refused first (before the
 * union, so the problem names `input` itself, not each of its numbers).
 */
export const EmbeddingsInput = z
  .unknown()
  .superRefine((value, ctx) => {
    if (isTokenIds(value)) ctx.addIssue({ code: 'custom', message: TOKEN_IDS_REFUSED });
  })
  .pipe(
    z.union(
      [
        Text,
        z
          .array(Text)
          .min(1, `must not be empty: send 1 to ${MAX_EMBEDDING_INPUTS} strings`)
          .max(MAX_EMBEDDING_INPUTS, `at most ${MAX_EMBEDDING_INPUTS} inputs`),
      ],
      {
        error: (issue) => {
          const value = issue.input;
          if (value === undefined) {
            return `required: a string or an array of 1 to ${MAX_EMBEDDING_INPUTS} strings`;
          }
          if (Array.isArray(value) && value.length > MAX_EMBEDDING_INPUTS) {
            return `at most ${MAX_EMBEDDING_INPUTS} inputs (got ${value.length})`;
          }
          return `must be a string or an array of 1 to ${MAX_EMBEDDING_INPUTS} strings`;
        },
      },
    ),
  )
  .meta({
    description: INPUT_DESCRIPTION,
    oneOf: [
      { type: 'string', minLength: 1 },
      {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        minItems: 1,
        maxItems: MAX_EMBEDDING_INPUTS,
      },
    ],
    example: ['A large furry dog is running in the park', 'A big hairy canine is jogging outdoors'],
  });

export const EmbeddingsRequest = z.strictObject({
  input: EmbeddingsInput,
  model: ModelName.meta({
    description:
      "A model the embedder serves, by Heimdex's registry name (the deployment's " +
      "EMBEDDING_MODEL_NAME, e.g. minilm-l6-v2, and EMBEDDING_MODELS). Required, as in OpenAI's " +
      'API; any other name is refused (400 naming `model`, listing the served models).',
    example: 'minilm-l6-v2',
  }),
  encoding_format: z
    .enum(ENCODING_FORMATS)
    .nullish()
    .meta({
      description:
        '`float` (the default): each embedding is an array of numbers. `base64`: each embedding ' +
        "is the base64 of its little-endian float32 bytes, as OpenAI's API encodes it (the " +
        'official SDKs ask for this and decode it).',
      default: 'float',
    }),
  dimensions: z
    .int()
    .positive()
    .nullish()
    .meta({
      description:
        "Accepted only when it equals the model's own dimension (e.g. 384 for minilm-l6-v2): " +
        'Heimdex does not shorten vectors. Any other value: 400 naming `dimensions`.',
    }),
  user: z.string().max(256).nullish().meta({
    description: 'Accepted for compatibility and ignored (never stored or logged).',
  }),
});
export type EmbeddingsRequest = z.output<typeof EmbeddingsRequest>;

const count = z.int().nonnegative();

export const EmbeddingsUsage = z.object({
  prompt_tokens: count.meta({
    description:
      "The inputs' tokens in the model's tokenizer (special tokens excluded), each input counted " +
      'whole, truncated or not.',
  }),
  total_tokens: count.meta({ description: 'Equal to prompt_tokens.' }),
  truncated_inputs: count.meta({
    description:
      "Heimdex extension (OpenAI clients ignore it): how many inputs were longer than the model's " +
      'window and were truncated to it before embedding.',
  }),
});
export type EmbeddingsUsage = z.infer<typeof EmbeddingsUsage>;

export const EmbeddingObject = z.object({
  object: z.literal('embedding'),
  /** The input's index in the request. */
  index: count,
  embedding: z.union([z.array(z.number()), z.string()]).meta({
    description:
      'The unit-length vector (cosine similarity is its dot product with another): an array of ' +
      'numbers, or with encoding_format base64 the base64 of its little-endian float32 bytes.',
  }),
});
export type EmbeddingObject = z.infer<typeof EmbeddingObject>;

export const EmbeddingsResponse = z.object({
  object: z.literal('list'),
  /** One embedding per input, in input order. */
  data: z.array(EmbeddingObject),
  /** The model that made the vectors (the request's). */
  model: z.string(),
  usage: EmbeddingsUsage,
});
export type EmbeddingsResponse = z.infer<typeof EmbeddingsResponse>;

// ---------------------------------------------------------------- base64 float32 vectors

/** The base64 of a vector's little-endian float32 bytes (OpenAI's `encoding_format: base64`). */
export function float32ToBase64(vector: ArrayLike<number>): string {
  const bytes = new Uint8Array(vector.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i] as number, true);
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** The vector of a base64 float32 embedding; throws on anything that is not one. */
export function base64ToFloat32(encoded: string): Float32Array {
  const binary = atob(encoded);
  if (binary.length % 4 !== 0) throw new Error('not a whole number of float32 values');
  const view = new DataView(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) view.setUint8(i, binary.charCodeAt(i));
  const out = new Float32Array(binary.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

// ---------------------------------------------------------------- errors

/**
 * OpenAI's error object. On /v1/* routes (and only there) a problem body carries one as its
 * `error` member, so that OpenAI SDKs, which read `error.message`, show what went wrong.
 */
export interface OpenAiError {
  message: string;
  /** By status: invalid_request_error, authentication_error, permission_error, rate_limit_error, server_error. */
  type: string;
  /** The first field the problem names, in OpenAI's notation (`input[3]`), else null. */
  param: string | null;
  /** The problem's code (validation_failed, unauthorized, payload_too_large, …). */
  code: string;
}

/** A problem field (`input.3`, a dotted path) in OpenAI's notation (`input[3]`). */
export function openAiParam(field: string): string | null {
  if (field === '' || field === '(body)') return null;
  return field
    .split('.')
    .reduce(
      (out, part) => (/^\d+$/.test(part) ? `${out}[${part}]` : out ? `${out}.${part}` : part),
      '',
    );
}

function openAiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/** Field errors named in an OpenAI message (the rest are counted). */
const NAMED_ERRORS = 3;

/**
 * The `error` member of a problem on a /v1/* route: its message names the fields and what is wrong
 * with each (else it is the problem's detail); `param` is the first field; `code` the problem's.
 */
export function openAiError(
  problem: Pick<ProblemBody, 'status' | 'code' | 'detail' | 'errors' | 'errors_omitted'>,
): OpenAiError {
  const errors = problem.errors ?? [];
  const named = errors
    .slice(0, NAMED_ERRORS)
    .map((e) => `${openAiParam(e.field) ?? 'body'}: ${e.message}`);
  const more = errors.length - named.length + (problem.errors_omitted ?? 0);
  const message =
    named.length > 0
      ? `${named.join('; ')}${more > 0 ? ` (and ${more} more)` : ''}`
      : problem.detail;
  return {
    message,
    type: openAiErrorType(problem.status),
    param: errors[0] ? openAiParam(errors[0].field) : null,
    code: problem.code,
  };
}

/** Whether a request path is one of the OpenAI-protocol routes (their problems carry `error`). */
export function isOpenAiPath(path: string): boolean {
  return path.startsWith('/v1/');
}

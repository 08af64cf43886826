/**
 * POST /v1/embeddings (OpenAI's protocol) inside workerd, against the real embedder: the response
 * shape in float and base64, Server-Timing, every error case of the shared route table with
 * OpenAI's `error` object beside the problem members, auth before validation, the embedder down,
 * and the OpenAPI document.
 */
import { describe, expect, it } from 'vitest';
import { base64ToFloat32 } from '../../contract/openai';
import { call, envWith, expectProblem, token, uniqueOrg, withEmbedderDown } from './helpers';
import type { ProblemBody } from './helpers';
import { expectFieldErrors } from './problem';
import { ROUTES } from './routes';
import type { BadRequest } from './routes';

const MODEL = 'potion-base-2M';
const DIM = 64;
const DOG = 'A large furry dog is running in the park';
const CANINE = 'A big hairy canine is jogging outdoors';

interface OpenAiProblem extends ProblemBody {
  error: { message: string; type: string; param: string | null; code: string };
}

interface EmbeddingsBody {
  object: string;
  data: Array<{ object: string; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number; truncated_inputs: number };
}

async function embeddings(body: unknown, t?: string): Promise<Response> {
  return call('POST', '/v1/embeddings', { token: t ?? (await token(uniqueOrg('oai'))), body });
}

/** The problem checks, and OpenAI's error object: message, type by status, param, code. */
async function expectOpenAiProblem(
  res: Response,
  status: number,
  code: string,
): Promise<OpenAiProblem> {
  const body = (await expectProblem(res, status, code)) as OpenAiProblem;
  const first = body.errors?.[0];
  expect(body.error).toEqual({
    message: expect.any(String),
    type:
      status === 401
        ? 'authentication_error'
        : status === 429
          ? 'rate_limit_error'
          : status >= 500
            ? 'server_error'
            : 'invalid_request_error',
    param: first ? first.field.replace(/\.(\d+)/g, '[$1]') : null,
    code,
  });
  // The message names the first field and says what is wrong with it; else it is the detail.
  expect(body.error.message).toEqual(
    first ? expect.stringContaining(`${body.error.param}: ${first.message}`) : body.detail,
  );
  return body;
}

const route = ROUTES.find((r) => r.template === '/v1/embeddings')!;

/** Sends one of the route table's bad requests as the reliability suite does. */
async function send(c: BadRequest): Promise<Response> {
  const headers: Record<string, string> = { ...c.headers };
  if (!c.anonymous) headers.authorization = `Bearer ${await token(uniqueOrg('bad'))}`;
  let rawBody: string | undefined;
  if (c.body !== undefined) {
    rawBody = typeof c.body === 'string' ? c.body : JSON.stringify(c.body);
    const type = c.contentType === undefined ? 'application/json' : c.contentType;
    if (type !== null) headers['content-type'] = type;
  }
  return call(c.method ?? route.method, c.path ?? route.template, { rawBody, headers });
}

describe('POST /v1/embeddings', () => {
  it("answers in OpenAI's shape: floats by default, one unit vector per input, in order", async () => {
    const res = await embeddings({ input: [DOG, CANINE, 'short'], model: MODEL, user: 'u-7' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await res.json()) as EmbeddingsBody;
    expect(body).toMatchObject({ object: 'list', model: MODEL });
    expect(body.data.map((d) => [d.object, d.index])).toEqual([
      ['embedding', 0],
      ['embedding', 1],
      ['embedding', 2],
    ]);
    for (const d of body.data) {
      const v = d.embedding as number[];
      expect(v).toHaveLength(DIM);
      expect(v.reduce((s, x) => s + x * x, 0)).toBeCloseTo(1, 5);
    }
    expect(body.usage.prompt_tokens).toBeGreaterThan(10);
    expect(body.usage).toEqual({
      prompt_tokens: body.usage.prompt_tokens,
      total_tokens: body.usage.prompt_tokens,
      truncated_inputs: 0,
    });
    // A string input is one embedding.
    const one = (await (await embeddings({ input: DOG, model: MODEL })).json()) as EmbeddingsBody;
    expect(one.data).toHaveLength(1);
    expect(one.data[0]!.embedding).toEqual(body.data[0]!.embedding);
  });

  it('encodes base64 as the little-endian float32 bytes of the same vectors', async () => {
    const input = [DOG, CANINE];
    const float = (await (
      await embeddings({ input, model: MODEL, encoding_format: 'float' })
    ).json()) as EmbeddingsBody;
    const res = await embeddings({
      input,
      model: MODEL,
      encoding_format: 'base64',
      dimensions: DIM,
    });
    expect(res.status).toBe(200);
    const base64 = (await res.json()) as EmbeddingsBody;
    base64.data.forEach((d, i) => {
      expect(typeof d.embedding).toBe('string');
      const bytes = Uint8Array.from(atob(d.embedding as string), (ch) => ch.charCodeAt(0));
      expect(bytes.length).toBe(DIM * 4);
      const view = new DataView(bytes.buffer);
      const decoded = Array.from({ length: DIM }, (_, k) => view.getFloat32(k * 4, true));
      expect(decoded).toEqual(float.data[i]!.embedding);
      expect(Array.from(base64ToFloat32(d.embedding as string))).toEqual(decoded);
    });
    expect(base64.usage).toEqual(float.usage);
  });

  it('counts inputs longer than the window in usage.truncated_inputs', async () => {
    const long = `${DOG}. `.repeat(200); // ~2,000 tokens; potion's window is 512
    const res = await embeddings({ input: [DOG, long, long], model: MODEL });
    expect(res.status).toBe(200);
    const body = (await res.json()) as EmbeddingsBody;
    expect(body.usage.truncated_inputs).toBe(2);
    expect(body.usage.prompt_tokens).toBeGreaterThan(2 * 512);
    expect(body.data[1]!.embedding).toEqual(body.data[2]!.embedding);
  });

  it('reports its own time and the embedder call in Server-Timing', async () => {
    const res = await embeddings({ input: DOG, model: MODEL });
    expect(res.status).toBe(200);
    const timing = res.headers.get('server-timing') ?? '';
    const dur = (name: string) => Number(new RegExp(`${name};dur=(\\d+)`).exec(timing)?.[1]);
    expect(dur('embedder')).toBeGreaterThanOrEqual(0);
    expect(dur('app')).toBeGreaterThanOrEqual(dur('embedder'));
  });

  it.each(route.errors.map((c) => [c.name, c] as const))(
    '%s: a problem naming the field, with the OpenAI error object',
    async (_name, c) => {
      const res = await send(c);
      const problem = await expectOpenAiProblem(res, c.status, c.code);
      if (c.fields) expectFieldErrors(problem, c.fields);
      c.check?.(problem, res.headers);
    },
  );

  it('checks the token before the body: a bad body without a token is 401', async () => {
    const res = await call('POST', '/v1/embeddings', { body: { input: [1, 2], model: 7 } });
    const body = await expectOpenAiProblem(res, 401, 'unauthorized');
    expect(body.error.message).toBe('missing bearer token');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="heimdex"');
    const expired = await call('POST', '/v1/embeddings', {
      token: await token('acme', { exp: Math.floor(Date.now() / 1000) - 60 }),
      body: { input: DOG, model: MODEL },
    });
    await expectOpenAiProblem(expired, 401, 'unauthorized');
  });

  it('answers 503 with Retry-After and a server_error when the embedder is down', async () => {
    const t = await token(uniqueOrg());
    const { result, attempts } = await withEmbedderDown((env) =>
      call('POST', '/v1/embeddings', { token: t, body: { input: DOG, model: MODEL }, env }),
    );
    expect(attempts).toEqual(['/v1/embeddings']);
    await expectOpenAiProblem(result, 503, 'dependency_unavailable');
    expect(result.headers.get('retry-after')).toBe('2');
  });

  it('carries the error object on every /v1 problem, and only there', async () => {
    await expectOpenAiProblem(await call('GET', '/v1/models'), 404, 'not_found');
    await expectOpenAiProblem(
      await call('POST', '/v1/embeddings', {
        token: await token('acme'),
        body: { input: DOG, model: MODEL },
        env: envWith({ DATABASE_URL: '' }),
      }),
      500,
      'misconfigured',
    );
    const other = await call('POST', '/vectors/search', { body: { query_text: DOG } });
    const problem = await expectProblem(other, 401, 'unauthorized');
    expect(problem).not.toHaveProperty('error');
  });

  it('is in the OpenAPI document, with its request and response schemas', async () => {
    const doc = (await (await call('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, Record<string, unknown>>>;
      components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
    };
    const op = doc.paths['/v1/embeddings']?.post;
    expect(op).toMatchObject({ operationId: 'createEmbeddings', security: [{ bearerAuth: [] }] });
    expect(Object.keys(op!.responses as object)).toEqual(
      expect.arrayContaining(['200', '400', '401', '413', '415', '422', '503']),
    );
    const request = doc.components.schemas.EmbeddingsRequest!;
    expect(Object.keys(request.properties!).sort()).toEqual([
      'dimensions',
      'encoding_format',
      'input',
      'model',
      'user',
    ]);
    expect(request.properties!.input).toMatchObject({ oneOf: expect.any(Array) });
    const usage = JSON.stringify(doc.components.schemas.EmbeddingsResponse);
    expect(usage).toContain('truncated_inputs');
    expect(JSON.stringify(doc.components.schemas.Problem)).toContain('OpenAI');
  });
});

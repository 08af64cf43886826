/**
 * Bindings and configuration. The Worker parses its environment once per invocation with zod and
 * fails closed with a message naming the bad setting; handlers receive the parsed Config and never
 * read `env` themselves.
 */
import { z } from 'zod';
import { DEFAULT_MAX_TEXT_CHARS } from '../../contract/rules';
import type { EmbedMessage } from './queue/message';
import { decodeKey } from './lib/text-cipher';

export interface Env {
  EMBED_QUEUE: Queue<EmbedMessage>;
  [key: string]: unknown;
}

const bool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

/** A 32-byte key in base64 (`openssl rand -base64 32`). */
function keyCheck(value: string, ctx: z.RefinementCtx): void {
  try {
    decodeKey(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
}

const ConfigSchema = z
  .object({
    ENVIRONMENT: z.enum(['development', 'test', 'production']).default('production'),
    DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    /** host:port/path of a WebSocket→TCP proxy (local development only; Neon needs none). */
    NEON_WS_PROXY: z.string().min(1).optional(),
    EMBEDDER_URL: z.url(),
    EMBEDDER_TOKEN: z.string().min(16, 'must be at least 16 characters'),
    EMBEDDER_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(30_000),
    /**
     * Timeout of the queue consumer's embedder calls: nobody waits on them, and on a saturated
     * embedder a batch of long texts can take minutes; timing out sooner only makes the queue
     * send the same work again while the embedder is still computing it.
     */
    EMBEDDER_QUEUE_TIMEOUT_MS: z.coerce.number().int().min(100).max(840_000).default(300_000),
    EMBEDDER_CALL_ITEMS: z.coerce.number().int().min(1).max(256).default(32),
    AUTH_PROVIDER: z.enum(['dev', 'jwks']).default('dev'),
    DEV_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    AUTH_JWKS_URL: z.url().optional(),
    AUTH_ISSUER: z.string().min(1).optional(),
    AUTH_AUDIENCE: z.string().min(1).optional(),
    AUTH_TENANT_CLAIM: z.string().min(1).default('org_id'),
    EMBEDDING_MODEL_NAME: z.string().min(1).default('minilm-l6-v2'),
    EMBEDDING_MODEL_VER: z.string().min(1).default('1'),
    MAX_TEXT_CHARS: z.coerce.number().int().min(1).max(1_000_000).default(DEFAULT_MAX_TEXT_CHARS),
    OUTBOX_SWEEP_AGE_SECONDS: z.coerce.number().int().min(0).max(86_400).default(30),
    OUTBOX_SWEEP_LIMIT: z.coerce.number().int().min(1).max(1000).default(100),
    OUTBOX_REDELIVER_AFTER_SECONDS: z.coerce.number().int().min(1).max(604_800).default(900),
    QUEUE_RETRY_BASE_SECONDS: z.coerce.number().int().min(0).max(3600).default(2),
    QUEUE_RETRY_MAX_SECONDS: z.coerce.number().int().min(0).max(43_200).default(300),
    DLQ_QUEUE_NAME: z.string().min(1).default('heimdex-embed-dlq'),
    LOG_LEVEL: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
    QUEUE_SEND_DISABLED: bool,
    TEXT_ENCRYPTION_KEY: z.string().superRefine(keyCheck),
    TEXT_ENCRYPTION_KEY_PREVIOUS: z.string().superRefine(keyCheck).optional(),
  })
  .superRefine((c, ctx) => {
    if (c.AUTH_PROVIDER === 'dev' && !c.DEV_JWT_SECRET) {
      ctx.addIssue({
        code: 'custom',
        path: ['DEV_JWT_SECRET'],
        message: 'required when AUTH_PROVIDER=dev',
      });
    }
    if (c.AUTH_PROVIDER === 'dev' && c.ENVIRONMENT === 'production') {
      ctx.addIssue({
        code: 'custom',
        path: ['AUTH_PROVIDER'],
        message: 'dev tokens are refused in production; set AUTH_PROVIDER=jwks',
      });
    }
    if (c.AUTH_PROVIDER === 'jwks') {
      for (const key of ['AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE'] as const) {
        if (!c[key]) {
          ctx.addIssue({
            code: 'custom',
            path: [key],
            message: 'required when AUTH_PROVIDER=jwks',
          });
        }
      }
    }
    if (c.QUEUE_SEND_DISABLED && c.ENVIRONMENT === 'production') {
      ctx.addIssue({
        code: 'custom',
        path: ['QUEUE_SEND_DISABLED'],
        message: 'fault injection cannot be enabled in production',
      });
    }
  });

export type RawConfig = z.infer<typeof ConfigSchema>;

export interface Config {
  environment: RawConfig['ENVIRONMENT'];
  databaseUrl: string;
  neonWsProxy: string | undefined;
  /** `callItems`: most items in one /internal/embed call; a queue batch's calls run together. */
  /** `queueTimeoutMs`: the queue consumer's calls (`timeoutMs`: the API's, which a client waits on). */
  embedder: {
    url: string;
    token: string;
    timeoutMs: number;
    queueTimeoutMs: number;
    callItems: number;
  };
  auth:
    | { provider: 'dev'; secret: string; tenantClaim: string }
    | {
        provider: 'jwks';
        jwksUrl: string;
        issuer: string;
        audience: string;
        tenantClaim: string;
      };
  model: { name: string; ver: string };
  maxTextChars: number;
  outbox: { sweepAgeSeconds: number; sweepLimit: number; redeliverAfterSeconds: number };
  retry: { baseSeconds: number; maxSeconds: number };
  dlqQueueName: string;
  logLevel: RawConfig['LOG_LEVEL'];
  /** Fault injection for tests: drop the Queue send after commit. Refused in production. */
  dropQueueSend: boolean;
  /** Keys (base64) that encrypt queued texts; `previous` only decrypts (rotation). */
  textKeys: { current: string; previous: string | undefined };
}

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`invalid Worker configuration: ${issues.join('; ')}`);
    this.name = 'ConfigError';
  }
}

const cache = new WeakMap<object, Config>();

export function parseConfig(env: Env): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const raw: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(env)) {
    if (typeof v === 'string' && v !== '') raw[k] = v;
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const c = parsed.data;
  const config: Config = {
    environment: c.ENVIRONMENT,
    databaseUrl: c.DATABASE_URL,
    neonWsProxy: c.NEON_WS_PROXY,
    embedder: {
      url: c.EMBEDDER_URL.replace(/\/+$/, ''),
      token: c.EMBEDDER_TOKEN,
      timeoutMs: c.EMBEDDER_TIMEOUT_MS,
      queueTimeoutMs: c.EMBEDDER_QUEUE_TIMEOUT_MS,
      callItems: c.EMBEDDER_CALL_ITEMS,
    },
    auth:
      c.AUTH_PROVIDER === 'dev'
        ? { provider: 'dev', secret: c.DEV_JWT_SECRET!, tenantClaim: c.AUTH_TENANT_CLAIM }
        : {
            provider: 'jwks',
            jwksUrl: c.AUTH_JWKS_URL!,
            issuer: c.AUTH_ISSUER!,
            audience: c.AUTH_AUDIENCE!,
            tenantClaim: c.AUTH_TENANT_CLAIM,
          },
    model: { name: c.EMBEDDING_MODEL_NAME, ver: c.EMBEDDING_MODEL_VER },
    maxTextChars: c.MAX_TEXT_CHARS,
    outbox: {
      sweepAgeSeconds: c.OUTBOX_SWEEP_AGE_SECONDS,
      sweepLimit: c.OUTBOX_SWEEP_LIMIT,
      redeliverAfterSeconds: c.OUTBOX_REDELIVER_AFTER_SECONDS,
    },
    retry: { baseSeconds: c.QUEUE_RETRY_BASE_SECONDS, maxSeconds: c.QUEUE_RETRY_MAX_SECONDS },
    dlqQueueName: c.DLQ_QUEUE_NAME,
    logLevel: c.LOG_LEVEL,
    dropQueueSend: c.QUEUE_SEND_DISABLED ?? false,
    textKeys: { current: c.TEXT_ENCRYPTION_KEY, previous: c.TEXT_ENCRYPTION_KEY_PREVIOUS },
  };
  cache.set(env, config);
  return config;
}

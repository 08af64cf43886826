/**
 * Local development secrets: the dev JWT secret, the Worker→embedder service token, the key
 * that encrypts queued texts and the key of the keyword index's term ids. Generated once, kept in <dataDir>/dev-secrets.json (mode 0600),
 * overridable by DEV_JWT_SECRET, EMBEDDER_TOKEN, TEXT_ENCRYPTION_KEY and KEYWORD_INDEX_KEY. Never used in production,
 * where they are `wrangler secret`s.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface DevSecrets {
  devJwtSecret: string;
  embedderToken: string;
  /** 32 random bytes, base64: encrypts texts in the outbox and the Queue. */
  textEncryptionKey: string;
  /** Keys the keyword index's term ids (the embedder's KEYWORD_INDEX_KEY). */
  keywordIndexKey: string;
}

export function loadDevSecrets(dataDir: string, env: NodeJS.ProcessEnv = process.env): DevSecrets {
  const file = path.join(dataDir, 'dev-secrets.json');
  let stored: Partial<DevSecrets> = {};
  if (fs.existsSync(file))
    stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<DevSecrets>;
  const secrets: DevSecrets = {
    devJwtSecret: stored.devJwtSecret ?? crypto.randomBytes(32).toString('base64url'),
    embedderToken: stored.embedderToken ?? crypto.randomBytes(32).toString('base64url'),
    textEncryptionKey: stored.textEncryptionKey ?? crypto.randomBytes(32).toString('base64'),
    keywordIndexKey: stored.keywordIndexKey ?? crypto.randomBytes(32).toString('base64url'),
  };
  if (
    !stored.devJwtSecret ||
    !stored.embedderToken ||
    !stored.textEncryptionKey ||
    !stored.keywordIndexKey
  ) {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  }
  return {
    devJwtSecret: env.DEV_JWT_SECRET || secrets.devJwtSecret,
    embedderToken: env.EMBEDDER_TOKEN || secrets.embedderToken,
    textEncryptionKey: env.TEXT_ENCRYPTION_KEY || secrets.textEncryptionKey,
    keywordIndexKey: env.KEYWORD_INDEX_KEY || secrets.keywordIndexKey,
  };
}

/**
 * Local development secrets: the dev JWT secret and the Worker→embedder service token. Generated
 * once, kept in <dataDir>/dev-secrets.json (mode 0600), overridable by DEV_JWT_SECRET and
 * EMBEDDER_TOKEN. Never used in production, where they are `wrangler secret`s.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export interface DevSecrets {
  devJwtSecret: string;
  embedderToken: string;
}

export function loadDevSecrets(dataDir: string, env: NodeJS.ProcessEnv = process.env): DevSecrets {
  const file = path.join(dataDir, 'dev-secrets.json');
  let stored: Partial<DevSecrets> = {};
  if (fs.existsSync(file))
    stored = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<DevSecrets>;
  const secrets: DevSecrets = {
    devJwtSecret: stored.devJwtSecret ?? crypto.randomBytes(32).toString('base64url'),
    embedderToken: stored.embedderToken ?? crypto.randomBytes(32).toString('base64url'),
  };
  if (!stored.devJwtSecret || !stored.embedderToken) {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(file, JSON.stringify(secrets, null, 2) + '\n', { mode: 0o600 });
  }
  return {
    devJwtSecret: env.DEV_JWT_SECRET || secrets.devJwtSecret,
    embedderToken: env.EMBEDDER_TOKEN || secrets.embedderToken,
  };
}

/**
 * `npm run token -- --org acme [--sub alice] [--ttl 3600]`: prints a dev-mode JWT signed with the
 * local DEV_JWT_SECRET (from the environment or .data/dev-secrets.json, created by `npm run dev`),
 * with the organisation at AUTH_TENANT_CLAIM (default `org_id`), as the dev stack's Worker reads it.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadDevSecrets } from './lib/secrets.js';
import { REPO_ROOT } from './lib/paths.js';
import { mintDevToken } from './lib/token.js';

const { values } = parseArgs({
  options: {
    org: { type: 'string', default: 'acme' },
    sub: { type: 'string', default: 'dev-user' },
    ttl: { type: 'string', default: '3600' },
  },
});
const ttl = Number(values.ttl);
if (!Number.isInteger(ttl) || ttl <= 0) {
  console.error('--ttl must be a positive number of seconds');
  process.exit(2);
}
const dataDir = path.resolve(REPO_ROOT, process.env.HEIMDEX_DATA_DIR ?? '.data');
const { devJwtSecret } = loadDevSecrets(dataDir);
console.log(
  await mintDevToken({
    secret: devJwtSecret,
    org: values.org!,
    subject: values.sub!,
    ttlSeconds: ttl,
    tenantClaim: process.env.AUTH_TENANT_CLAIM,
  }),
);

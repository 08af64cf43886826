#!/usr/bin/env node
// `npx heimdex …`: the Heimdex command-line client. The CLI is TypeScript (scripts/cli/); tsx,
// a dev dependency of this repository, compiles it on the fly. The Node version is checked first.
import { requireNode } from './lib/node-version.mjs';

requireNode('heimdex');
let register;
try {
  ({ register } = await import('tsx/esm/api'));
} catch {
  process.stderr.write('heimdex: the CLI needs tsx; run `npm install` in the Heimdex checkout\n');
  process.exit(1);
}
register();
const { main } = await import('./cli/main.ts');
await main();

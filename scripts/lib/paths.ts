import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository's root folder: the one definition every script, bench and test imports. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

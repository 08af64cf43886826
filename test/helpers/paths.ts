import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../scripts/lib/stack.js';

/** The shared test models folder beside the checkout (CI clones with shared/ next to it). */
export const SHARED_MODELS = path.resolve(REPO_ROOT, '../shared/models');
export const TEST_MODEL = 'potion-base-2M';

export function assertTestModel(): void {
  const p = path.join(SHARED_MODELS, TEST_MODEL, 'onnx', 'model.onnx');
  if (!fs.existsSync(p)) {
    throw new Error(`the test model is missing: expected ${p} (shared/ must sit beside the repo)`);
  }
}

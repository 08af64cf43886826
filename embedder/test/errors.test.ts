import { describe, expect, it } from 'vitest';
import { ServiceError } from '../src/core/errors.js';
import { PROBLEMS, toApiError } from '../src/http/errors.js';

describe('problem mapping', () => {
  it('maps every domain error code to a problem with its status', () => {
    const cases = [
      ['unknown_model', 400],
      ['empty_embedding', 422],
      ['overloaded', 429],
      ['model_not_ready', 503],
      ['store_unavailable', 503],
      ['model_unavailable', 503],
      ['cancelled', 499],
    ] as const;
    for (const [code, status] of cases) {
      const mapped = toApiError(new ServiceError(code, 'x'));
      expect(mapped.code).toBe(code);
      expect(PROBLEMS[mapped.code].status).toBe(status);
    }
  });

  it('carries Retry-After for overload', () => {
    const mapped = toApiError(new ServiceError('overloaded', 'busy', { retryAfterSeconds: 1 }));
    expect(mapped.options.headers).toEqual({ 'retry-after': '1' });
  });

  it('hides unexpected errors behind a generic 500', () => {
    const mapped = toApiError(new TypeError('secret internals: user text here'));
    expect(mapped.code).toBe('internal');
    expect(mapped.message).not.toContain('user text');
  });
});

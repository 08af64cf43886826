import { describe, expect, it } from 'vitest';
import { HEIMDEX_POINT_NAMESPACE, pointId, uuidV5 } from '../../contract/ids.js';

const key = {
  org_id: 'acme',
  asset_id: 'a1',
  segment_id: 's1',
  model: 'potion-base-2M',
  model_ver: '1',
};

describe('point ids', () => {
  it('implements RFC 4122 UUID v5 (known vectors)', async () => {
    const dns = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';
    expect(await uuidV5('www.example.com', dns)).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
    expect(await uuidV5('python.org', dns)).toBe('886313e1-3b8a-5372-9b90-0c9aee199e5d');
  });

  it('is the v5 UUID of org\\0asset\\0segment\\0model\\0model_ver in the Heimdex namespace', async () => {
    const id = await pointId(key);
    expect(id).toBe(
      await uuidV5('acme\u0000a1\u0000s1\u0000potion-base-2M\u00001', HEIMDEX_POINT_NAMESPACE),
    );
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Pinned: changing the namespace or the layout would orphan every stored vector.
    // Pinned (cross-checked with Python's uuid.uuid5): changing the namespace or the layout
    // would orphan every stored vector.
    expect(id).toBe('bb0a0800-e1f9-5280-b99e-d1e00f1dd7f4');
  });

  it('is deterministic and differs for every part of the key', async () => {
    const base = await pointId(key);
    expect(await pointId({ ...key })).toBe(base);
    for (const field of Object.keys(key) as (keyof typeof key)[]) {
      expect(await pointId({ ...key, [field]: `${key[field]}x` })).not.toBe(base);
    }
    // The separator keeps ("a", "bc") and ("ab", "c") apart.
    expect(await pointId({ ...key, org_id: 'a', asset_id: 'bc' })).not.toBe(
      await pointId({ ...key, org_id: 'ab', asset_id: 'c' }),
    );
  });
});

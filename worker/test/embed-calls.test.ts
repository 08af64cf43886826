/**
 * How the queue consumer splits a batch into embedder calls (chunkEmbedItems): by item count and
 * by JSON bytes, in order, never dropping or duplicating an item.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_TEXT_CHARS } from '../../contract/rules';
import { EMBED_CALL_MAX_BYTES, chunkEmbedItems } from '../src/services/embedder';
import type { EmbedItem } from '../src/services/embedder';

function item(i: number, text = `text ${i}`): EmbedItem {
  return {
    job_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    seq: i + 1,
    org_id: 'org',
    asset_id: 'asset',
    segment_id: `s${i}`,
    model: 'm',
    model_ver: '1',
    text,
  };
}

const bytes = (items: EmbedItem[]) => new TextEncoder().encode(JSON.stringify({ items })).length;

describe('chunkEmbedItems', () => {
  it('splits by item count, in order', () => {
    const items = Array.from({ length: 100 }, (_, i) => item(i));
    const calls = chunkEmbedItems(items, 32);
    expect(calls.map((c) => c.length)).toEqual([32, 32, 32, 4]);
    expect(calls.flat()).toEqual(items);
    expect(chunkEmbedItems(items, 100)).toEqual([items]);
    expect(chunkEmbedItems([], 32)).toEqual([]);
  });

  it('splits by UTF-8 bytes of the JSON body, counting multi-byte characters', () => {
    // 40,000 three-byte characters: ~120 KB per item, though only 40,000 UTF-16 units.
    const items = Array.from({ length: 10 }, (_, i) => item(i, '漢'.repeat(40_000)));
    const calls = chunkEmbedItems(items, 32, 300_000);
    expect(calls.map((c) => c.length)).toEqual([2, 2, 2, 2, 2]);
    for (const c of calls) expect(bytes(c)).toBeLessThanOrEqual(300_000);
    expect(calls.flat()).toEqual(items);
  });

  it('sends an item larger than the byte cap alone rather than dropping it', () => {
    const items = [item(0), item(1, 'x'.repeat(2_000)), item(2)];
    const calls = chunkEmbedItems(items, 32, 1_000);
    expect(calls.map((c) => c.map((i) => i.segment_id))).toEqual([['s0'], ['s1'], ['s2']]);
  });

  it('keeps a full batch of long texts under the embedder body limit', () => {
    // 100 messages at the Worker's default MAX_TEXT_CHARS of 3-byte characters: ~9.6 MB in all,
    // more than the embedder's 8 MiB body limit in one call.
    const items = Array.from({ length: 100 }, (_, i) =>
      item(i, '語'.repeat(DEFAULT_MAX_TEXT_CHARS)),
    );
    const calls = chunkEmbedItems(items, 32);
    expect(calls.length).toBeGreaterThan(3);
    for (const c of calls) expect(bytes(c)).toBeLessThanOrEqual(EMBED_CALL_MAX_BYTES);
    expect(calls.flat()).toHaveLength(100);
  });
});

import { describe, expect, it } from 'vitest';
import { chunkingChecks } from './lib/checks.js';
import { describeChunking, parseChunking, summarizeJobResults } from './lib/chunking.js';
import { MAX_BODY_BYTES, batchBodies } from './lib/heimdex.js';

describe('summarizeJobResults', () => {
  it('counts chunks, texts over the window, truncated and multi-chunk texts', () => {
    const s = summarizeJobResults(
      [
        { token_count: 100, truncated: false, chunk_count: 1 },
        { token_count: 254, truncated: false, chunk_count: 1 },
        { token_count: 255, truncated: false, chunk_count: 2 },
        { token_count: 900, truncated: false, chunk_count: 5 },
      ],
      254,
    );
    expect(s).toMatchObject({
      texts: 4,
      chunks: 9,
      chunkCountMissing: 0,
      multiChunk: 2,
      truncated: 0,
      window: 254,
      overWindow: 2,
      chunksPerText: { mean: 2.25, max: 5 },
    });
    expect(s.tokens).toMatchObject({ n: 4, p50: 254, max: 900 });
  });

  it('reads truncated results, and results written before chunking as one chunk each', () => {
    const s = summarizeJobResults(
      [
        { token_count: 300, truncated: true, chunk_count: 1 },
        { token_count: 300, truncated: true },
      ],
      null,
    );
    expect(s).toMatchObject({ chunks: 2, chunkCountMissing: 1, truncated: 2, overWindow: null });
  });
});

describe('chunkingChecks (chunked nDCG@10 ≥ truncated)', () => {
  const run = (label: string, dense: number, hybrid: number) => ({
    label,
    truncates: label === 'truncate',
    modes: [
      { label: 'dense', metrics: { ndcgAt10: dense } },
      { label: 'hybrid', metrics: { ndcgAt10: hybrid } },
    ],
  });

  it("compares each chunked pass with truncate's, whatever the order", () => {
    const checks = chunkingChecks([run('default', 0.67, 0.7), run('truncate', 0.66, 0.71)]);
    expect(checks.map((c) => [c.chunking, c.mode, c.status])).toEqual([
      ['default', 'dense', 'met'],
      ['default', 'hybrid', 'not met'],
    ]);
    expect(checks[1]?.figures).toBe('default 0.7000, truncate 0.7100: -0.0100');
    expect(checks[0]?.measured).toBeCloseTo(0.01, 9);
    // Equal counts as met, despite floating-point noise.
    expect(
      chunkingChecks([run('truncate', 0.3, 0.3), run('64:8', 0.1 + 0.2, 0.3)])[0]?.status,
    ).toBe('met');
  });

  it('checks nothing without a truncate setting', () => {
    expect(chunkingChecks([run('default', 0.67, 0.7), run('128:16', 0.6, 0.6)])).toEqual([]);
  });
});

describe('batchBodies with chunking', () => {
  const docs = Array.from({ length: 300 }, (_, i) => ({ id: `d${i}`, text: `text ${i}` }));

  it('sends the setting once per batch, or nothing for the server default', () => {
    for (const item of ['truncate', '128:16', 'default']) {
      const setting = parseChunking(item);
      const bodies = batchBodies(docs, 'a', setting.request);
      expect(bodies.map((b) => b.n)).toEqual([256, 44]);
      for (const { body } of bodies) {
        const parsed = JSON.parse(body) as Record<string, unknown>;
        expect(parsed.asset_id).toBe('a');
        if (setting.request === null) expect(parsed).not.toHaveProperty('chunking');
        else expect(parsed.chunking).toEqual(setting.request);
      }
    }
  });

  it('keeps bodies under the byte limit with the field counted', () => {
    const big = Array.from({ length: 40 }, (_, i) => ({ id: `d${i}`, text: 'x'.repeat(30_000) }));
    for (const { body } of batchBodies(big, 'a', { max_tokens: 128, overlap_tokens: 16 })) {
      expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_BODY_BYTES);
    }
  });

  it('describes each setting', () => {
    expect(describeChunking(parseChunking('truncate'))).toMatch(/first window only/);
    expect(describeChunking(parseChunking('default'))).toMatch(/no chunking field sent/);
    expect(describeChunking(parseChunking('128:16'))).toBe(
      'windows of 128 tokens overlapping by 16',
    );
  });
});

import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  KeywordTerms,
  analyze,
  bm25Idf,
  bm25Tf,
  foldCase,
  termVector,
} from '../src/core/keywords.js';

const KEY = 'a-keyword-index-key-of-40-characters-xyz';

describe('the keyword analyzer', () => {
  it('normalises (NFKC, case folding) and segments words in space-separated scripts', () => {
    expect(foldCase('Straße ＦＵＬＬ ﬁle ΟΔΟΣ')).toBe('strasse full file οδοσ');
    expect(analyze('Straße STRASSE ﬁle Ｆｕｌｌ')).toEqual(['strass', 'strass', 'file', 'full']);
    expect(analyze('naïve café 3.14 v2.0 e-mail', { stem: false })).toEqual([
      'naïve',
      'café',
      '3.14',
      'v2.0',
      'e',
      'mail',
    ]);
  });

  it('segments Chinese, Japanese and Thai into words (no spaces between them)', () => {
    expect(analyze('我喜欢北京烤鸭')).toEqual(['我', '喜欢', '北京', '烤鸭']);
    expect(analyze('東京都に住んでいます')).toContain('東京');
    expect(analyze('ภาษาไทยง่ายนิดเดียว')).toEqual(['ภาษา', 'ไทย', 'ง่าย', 'นิด', 'เดียว']);
  });

  it("drops Lucene's English stop words and Porter-stems ASCII words only", () => {
    expect(analyze('The running dogs ran to the parks')).toEqual(['run', 'dog', 'ran', 'park']);
    expect(analyze('The running dogs', { stopWords: false, stem: false })).toEqual([
      'the',
      'running',
      'dogs',
    ]);
    // A product code keeps its parts; words of other scripts are not stemmed.
    expect(analyze('XR-7734b')).toEqual(['xr', '7734b']);
    expect(analyze('bücher läufer')).toEqual(['bücher', 'läufer']);
    // Punctuation and whitespace alone make no terms.
    expect(analyze(' -- !? ')).toEqual([]);
  });
});

describe('keyed term vectors', () => {
  it('counts terms: unique ids ascending, their counts, and the length with repeats', () => {
    const v = termVector(['b', 'a', 'b', 'c'], (t) => ({ a: 30, b: 10, c: 20 })[t] as number);
    expect(Array.from(v.ids)).toEqual([10, 20, 30]);
    expect(Array.from(v.tfs)).toEqual([2, 1, 1]);
    expect(v.length).toBe(4);
  });

  it('ids are HMAC-SHA256 under a per-organisation key: stable, different per org, unreadable without the key', () => {
    const terms = new KeywordTerms(KEY);
    const acme = terms.document('acme', 'Zebra zebra');
    expect(Array.from(acme.tfs)).toEqual([2]);
    expect(acme.length).toBe(2);
    // The documented construction, recomputed here.
    const orgKey = createHmac('sha256', KEY).update('heimdex keyword terms v1\u0000acme').digest();
    const expected = createHmac('sha256', orgKey).update('zebra').digest().readUInt32LE(0);
    expect(Array.from(acme.ids)).toEqual([expected]);
    // Same org and word: same id (queries find documents); another org or key: another id.
    expect(Array.from(terms.query('acme', 'ZEBRA').ids)).toEqual([expected]);
    expect(Array.from(terms.document('globex', 'zebra').ids)).not.toEqual([expected]);
    expect(Array.from(new KeywordTerms(`${KEY}!`).document('acme', 'zebra').ids)).not.toEqual([
      expected,
    ]);
    expect(() => new KeywordTerms('short')).toThrow(/at least 16/);
  });
});

describe('BM25 parts', () => {
  it("are Lucene's idf and the k1 0.9 / b 0.4 saturation", () => {
    expect(bm25Idf(3, 1)).toBeCloseTo(Math.log(1 + 2.5 / 1.5), 12);
    expect(bm25Tf(2, 3, 3)).toBeCloseTo((2 * 1.9) / (2 + 0.9), 12);
    expect(bm25Tf(1, 6, 3)).toBeCloseTo(1.9 / (1 + 0.9 * (0.6 + 0.8)), 12);
  });
});

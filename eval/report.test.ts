import { describe, expect, it } from 'vitest';
import { DEFAULT_FUSION, DEFAULT_RRF } from '../contract/internal.js';
import type { SearchMode } from '../contract/internal.js';
import {
  BM25_TOLERANCE,
  HYBRID_GAIN,
  NDCG_TOLERANCE,
  agreement,
  computeChecks,
  metricDelta,
} from './lib/checks.js';
import { describeChunking, parseChunking } from './lib/chunking.js';
import type { ChunkStats } from './lib/chunking.js';
import type { IngestResult } from './lib/heimdex.js';
import type { Check, CheckInputs } from './lib/checks.js';
import type { MetricSummary } from './lib/metrics.js';
import {
  DEFAULT_MODES,
  effectiveFusion,
  parseModes,
  parseOptions,
  sweepGrid,
} from './lib/options.js';
import type { FusionSettings } from './lib/options.js';
import { bestOfSweep, compareChunking, describeRun, renderEval } from './lib/report.js';
import type { EvalResult, ModeRun, SettingRun } from './lib/report.js';
import { testEnvelope } from './test-envelope.js';

const env = {} as NodeJS.ProcessEnv;

describe('eval options', () => {
  it('runs every mode once by default, with the API fusion defaults and both references', () => {
    const o = parseOptions([], env);
    expect(o.modes).toEqual(['dense', 'keyword', 'hybrid']);
    expect(DEFAULT_MODES).toEqual(['dense', 'keyword', 'hybrid']);
    expect(o.fusion).toEqual({});
    expect(o.sweepFusion).toBe(false);
    expect(o.reference).toBe(true);
    expect(o.model).toBe('minilm-l6-v2');
    expect(o.split).toBe('train');
  });

  it('takes --modes as a comma-separated list, each mode once, in the order given', () => {
    expect(parseOptions(['--modes', 'hybrid,dense'], env).modes).toEqual(['hybrid', 'dense']);
    expect(parseModes(' keyword , keyword,dense,')).toEqual(['keyword', 'dense']);
    expect(() => parseModes('dense,sparse')).toThrow(/unknown mode "sparse"/);
    expect(() => parseModes(' , ')).toThrow(/no mode/);
  });

  it('ingests with the server default chunking unless --chunking names settings', () => {
    expect(parseOptions([], env).chunking).toEqual([
      { label: 'default', request: null, slug: 'default' },
    ]);
    const o = parseOptions(['--chunking', 'truncate, default,128:16,truncate'], env);
    expect(o.chunking.map((c) => c.label)).toEqual(['truncate', 'default', '128:16']);
    expect(o.chunking[0]?.request).toBe('truncate');
    expect(o.chunking[2]).toEqual({
      label: '128:16',
      request: { max_tokens: 128, overlap_tokens: 16 },
      slug: 'w128o16',
    });
  });

  it('refuses chunking settings the API would refuse, naming the field', () => {
    expect(() => parseOptions(['--chunking', ' , '], env)).toThrow(/names no setting/);
    expect(() => parseOptions(['--chunking', 'windows'], env)).toThrow(/"windows" is not/);
    expect(() => parseOptions(['--chunking', '128'], env)).toThrow(/MAX:OVERLAP/);
    expect(() => parseOptions(['--chunking', '8:0'], env)).toThrow(/max_tokens/);
    expect(() => parseOptions(['--chunking', '64:64'], env)).toThrow(/overlap_tokens/);
    expect(() => parseOptions(['--chunking', '64:-1'], env)).toThrow(/MAX:OVERLAP/);
  });

  it('no longer knows the single --mode passthrough', () => {
    expect(() => parseOptions(['--mode', 'dense'], env)).toThrow(/--mode/);
  });

  it('passes only the fusion options given, checked against the API bounds', () => {
    expect(parseOptions(['--fusion-method', 'rrf', '--fusion-k', '30'], env).fusion).toEqual({
      method: 'rrf',
      k: 30,
    });
    expect(parseOptions(['--fusion-weight', '0.7'], env).fusion).toEqual({ weight: 0.7 });
    expect(
      parseOptions(['--fusion-method', 'rrf', '--fusion-k', '10', '--fusion-weight', '0'], env)
        .fusion,
    ).toEqual({ method: 'rrf', k: 10, weight: 0 });
    expect(parseOptions(['--fusion-method', 'dbsf'], env).fusion).toEqual({ method: 'dbsf' });
    for (const k of ['0', '1.5', '1001', 'x']) {
      expect(() => parseOptions(['--fusion-method', 'rrf', '--fusion-k', k], env)).toThrow(
        /--fusion-k/,
      );
    }
    for (const w of ['-0.1', '1.01', 'x', '']) {
      expect(() => parseOptions(['--fusion-weight', w], env)).toThrow(/--fusion-weight/);
    }
    expect(() => parseOptions(['--fusion-method', 'borda'], env)).toThrow(/--fusion-method/);
    // k is RRF's: refused with the default method (DBSF).
    expect(() => parseOptions(['--fusion-k', '30'], env)).toThrow(/--fusion-method rrf/);
  });

  it('refuses fusion options without a hybrid pass', () => {
    expect(() => parseOptions(['--modes', 'dense', '--fusion-weight', '0.3'], env)).toThrow(
      /hybrid/,
    );
  });

  it('--sweep-fusion and --no-reference (which skips only the Python reference)', () => {
    const o = parseOptions(['--sweep-fusion', '--no-reference'], env);
    expect(o.sweepFusion).toBe(true);
    expect(o.reference).toBe(false);
    expect(o.modes).toEqual(['dense', 'keyword', 'hybrid']);
  });

  it('takes the model from the environment', () => {
    const o = parseOptions([], { EMBEDDING_MODEL_NAME: 'e5-small', EMBEDDING_DTYPE: 'q8' });
    expect(o.model).toBe('e5-small');
    expect(o.dtype).toBe('q8');
    expect(() => parseOptions(['--dtype', 'int4'], env)).toThrow(/--dtype/);
  });

  it('sweeps k ∈ {10, 30, 60, 100} × weight ∈ {0.3, 0.5, 0.7}', () => {
    const grid = sweepGrid();
    expect(grid).toHaveLength(12);
    expect(grid[0]).toEqual({ method: 'rrf', k: 10, weight: 0.3 });
    expect(grid.at(-1)).toEqual({ method: 'rrf', k: 100, weight: 0.7 });
    expect(grid).toContainEqual(DEFAULT_RRF);
  });

  it('fills the fusion the API answers with from its defaults', () => {
    expect(effectiveFusion({})).toEqual(DEFAULT_FUSION);
    expect(DEFAULT_FUSION).toEqual({ method: 'dbsf', k: DEFAULT_RRF.k, weight: 0.5 });
    expect(effectiveFusion({ weight: 0.3 })).toEqual({ ...DEFAULT_FUSION, weight: 0.3 });
    expect(effectiveFusion({ method: 'rrf' })).toEqual(DEFAULT_RRF);
    expect(effectiveFusion({ method: 'rrf', k: 30 })).toEqual({ ...DEFAULT_RRF, k: 30 });
  });
});

const inputs = (x: Partial<CheckInputs>): CheckInputs => ({
  dense: null,
  keyword: null,
  hybrid: null,
  reference: null,
  bm25: null,
  ...x,
});
const byId = (checks: Check[], id: Check['id']) => checks.find((c) => c.id === id) as Check;

describe('the checks', () => {
  it('the targets are issue 15 and the dense reference', () => {
    expect(HYBRID_GAIN).toBe(0.03);
    expect(BM25_TOLERANCE).toBe(0.02);
    expect(NDCG_TOLERANCE).toBe(0.005);
  });

  it('all met, with the figures', () => {
    const checks = computeChecks(
      inputs({ dense: 0.66, keyword: 0.68, hybrid: 0.72, reference: 0.6602, bm25: 0.6966 }),
    );
    expect(checks.map((c) => c.id)).toEqual([
      'dense-vs-reference',
      'hybrid-over-dense',
      'hybrid-over-best-single',
      'keyword-vs-bm25',
    ]);
    expect(checks.every((c) => c.status === 'met')).toBe(true);
    const hybrid = byId(checks, 'hybrid-over-dense');
    expect(hybrid.measured).toBeCloseTo(0.06, 9);
    expect(hybrid.figures).toBe('hybrid 0.7200, dense 0.6600: +0.0600 (needs ≥ +0.0300)');
    expect(byId(checks, 'hybrid-over-best-single').figures).toBe(
      'hybrid 0.7200, best single mode keyword 0.6800: +0.0400',
    );
    expect(byId(checks, 'keyword-vs-bm25').figures).toBe('keyword 0.6800, BM25 0.6966: -0.0166');
    expect(byId(checks, 'keyword-vs-bm25').measured).toBeCloseTo(0.0166, 9);
  });

  it('meets a target exactly at its bound despite floating-point noise', () => {
    // 0.69 − 0.66 is 0.029999999999999916 in doubles.
    const checks = computeChecks(inputs({ dense: 0.66, keyword: 0.69, hybrid: 0.69, bm25: 0.67 }));
    expect(byId(checks, 'hybrid-over-dense').status).toBe('met');
    expect(byId(checks, 'hybrid-over-best-single').status).toBe('met');
    expect(byId(checks, 'keyword-vs-bm25').status).toBe('met');
  });

  it('not met: hybrid short of dense + 0.03, below keyword, keyword off BM25 either way', () => {
    const checks = computeChecks(
      inputs({ dense: 0.66, keyword: 0.7, hybrid: 0.685, reference: 0.65, bm25: 0.6799 }),
    );
    expect(byId(checks, 'hybrid-over-dense').status).toBe('not met');
    expect(byId(checks, 'hybrid-over-best-single').status).toBe('not met');
    expect(byId(checks, 'hybrid-over-best-single').measured).toBeCloseTo(-0.015, 9);
    expect(byId(checks, 'keyword-vs-bm25').status).toBe('not met');
    expect(byId(checks, 'dense-vs-reference').status).toBe('not met');
    const below = computeChecks(inputs({ keyword: 0.65, bm25: 0.6701 }));
    expect(byId(below, 'keyword-vs-bm25').status).toBe('not met');
  });

  it('not measured where a pass or a reference did not run, saying which', () => {
    const checks = computeChecks(inputs({ keyword: 0.68, bm25: 0.69 }));
    expect(byId(checks, 'keyword-vs-bm25').status).toBe('met');
    const dense = byId(checks, 'hybrid-over-dense');
    expect(dense.status).toBe('not measured');
    expect(dense.measured).toBeNull();
    expect(dense.figures).toMatch(/no hybrid, dense figure/);
    expect(byId(checks, 'dense-vs-reference').figures).toMatch(/no dense, reference/);
  });
});

describe('agreement and deltas', () => {
  it('top-10 overlap, same first result and score differences', () => {
    const a = new Map([
      [
        'q1',
        new Map([
          ['d1', 3],
          ['d2', 2],
          ['d3', 1],
        ]),
      ],
      ['q2', new Map([['d4', 1]])],
    ]);
    const b = new Map([
      [
        'q1',
        new Map([
          ['d1', 3.5],
          ['d9', 2],
        ]),
      ],
      ['q2', new Map([['d5', 1]])],
    ]);
    const x = agreement(a, b, ['q1', 'q2']);
    // q1: {d1} in common → 0.1; q2: none.
    expect(x.top10Overlap).toBeCloseTo(0.05, 9);
    expect(x.top1Same).toBe(1);
    expect(x.scoreAbsDiff).toEqual({ mean: 0.5, max: 0.5, pairs: 1 });
  });

  it('metricDelta is a − b', () => {
    expect(
      metricDelta(
        { ndcgAt10: 0.7, recallAt100: 0.9, mrrAt10: 0.6 },
        { ndcgAt10: 0.6, recallAt100: 0.95, mrrAt10: 0.6 },
      ),
    ).toEqual({ ndcgAt10: 0.1, recallAt100: -0.05, mrrAt10: 0 });
  });
});

const metrics = (ndcgAt10: number): MetricSummary => ({
  ndcgAt10,
  recallAt100: ndcgAt10 + 0.2,
  mrrAt10: ndcgAt10 - 0.03,
  queries: 809,
  skippedNoRelevant: 0,
  emptyResults: 0,
});

function modeRun(
  mode: SearchMode,
  ndcg: number,
  p50: number,
  fusion: { sent: Partial<FusionSettings>; label?: string } | null = null,
): ModeRun {
  const effective = fusion ? effectiveFusion(fusion.sent) : null;
  return {
    label: fusion?.label ?? mode,
    mode,
    fusionSent: fusion?.sent ?? null,
    fusion: effective,
    metrics: metrics(ndcg),
    search: {
      queries: 809,
      limit: 100,
      latencyMs: { n: 809, min: 1, mean: p50, p50, p95: p50 * 2, p99: p50 * 3, max: p50 * 4 },
      unknownResults: 0,
      modeReported: mode,
    },
  };
}

const AGREE = {
  top10Overlap: 1,
  top1Same: 809,
  scoreAbsDiff: { mean: 8e-8, max: 5e-7, pairs: 80900 },
};

function ingestResult(chunks: Partial<ChunkStats> = {}): IngestResult {
  return {
    docs: 5183,
    requests: 21,
    seconds: 600,
    textsPerSecond: 8.6,
    submitSeconds: 20,
    chunksPerSecond: 14.3,
    chunks: {
      texts: 5183,
      chunks: 8580,
      chunkCountMissing: 0,
      multiChunk: 3681,
      truncated: 0,
      window: 254,
      overWindow: 3681,
      tokens: { n: 5183, min: 9, mean: 330, p50: 314, p95: 600, p99: 800, max: 1937 },
      chunksPerText: { mean: 1.655, max: 9 },
      ...chunks,
    },
    succeeded: 5183,
    failed: 0,
    failedCodes: {},
    waitedWith: 'batches',
    retries: 0,
  };
}

/** One chunking setting's run, its nDCG@10s `shift` above the default fixture's. */
function settingRun(item = 'default', shift = 0, over: Partial<SettingRun> = {}): SettingRun {
  const setting = parseChunking(item);
  const modes = [
    modeRun('dense', 0.6602 + shift, 120),
    modeRun('keyword', 0.69 + shift, 60),
    modeRun('hybrid', 0.7123 + shift, 150, { sent: {} }),
  ];
  const sweep = sweepGrid().map((f, i) =>
    modeRun('hybrid', 0.69 + shift + i / 1000, 140, {
      sent: f,
      label: `hybrid k=${f.k} weight=${f.weight}`,
    }),
  );
  return {
    chunking: {
      label: setting.label,
      request: setting.request,
      description: describeChunking(setting),
    },
    org: `eval-scifact-2026-12-02T10-00-00-${setting.slug}`,
    ingest: ingestResult(),
    modes,
    sweep,
    sweepBest: bestOfSweep(sweep),
    vsReference: { delta: metricDelta(metrics(0.6602 + shift), metrics(0.6602)), agreement: AGREE },
    vsBm25: {
      delta: metricDelta(metrics(0.69 + shift), metrics(0.6966)),
      agreement: {
        top10Overlap: 0.98,
        top1Same: 800,
        scoreAbsDiff: { mean: 1e-6, max: 1e-5, pairs: 80000 },
      },
    },
    checks: computeChecks({
      dense: 0.6602 + shift,
      keyword: 0.69 + shift,
      hybrid: 0.7123 + shift,
      reference: 0.6602,
      bm25: 0.6966,
    }),
    ...over,
  };
}

function result(over: Partial<EvalResult> = {}): EvalResult {
  return {
    ...testEnvelope('npm run eval -- --sweep-fusion', 3600),
    schema: 'heimdex-eval/3',
    dataset: { name: 'scifact', split: 'train', docs: 5183, blankDocs: 0, queries: 809, files: {} },
    model: { name: 'minilm-l6-v2', dir: '.cache/models/x', dtype: 'fp32', files: {} },
    settings: { limit: 100, referenceRan: 'after the Heimdex side' },
    heimdex: [settingRun()],
    chunking: null,
    reference: {
      metrics: metrics(0.6602),
      metricsByThisCode: metrics(0.6602),
      metricCodeMaxDiff: 0,
      model: {},
      seconds: {},
      docsPerSecond: 1.4,
      wallSeconds: 3799,
      settings: {},
      versions: { 'sentence-transformers': '6.2.0' },
    },
    bm25: { metrics: metrics(0.6966), seconds: 10.2, settings: { k1: 0.9, b: 0.4 } },
    warnings: [],
    ...over,
  };
}

/** The fixture with several chunking settings, compared as run.ts compares them. */
function multiResult(runs: SettingRun[]): EvalResult {
  return result({ heimdex: runs, chunking: compareChunking(runs) });
}

describe('bestOfSweep and describeRun', () => {
  it('picks the best nDCG@10, the first of equals', () => {
    const runs = [
      modeRun('hybrid', 0.7, 1, { sent: { method: 'rrf', k: 10, weight: 0.3 } }),
      modeRun('hybrid', 0.71, 1, { sent: { method: 'rrf', k: 30, weight: 0.5 } }),
      modeRun('hybrid', 0.71, 1, { sent: { method: 'rrf', k: 60, weight: 0.5 } }),
    ];
    expect(bestOfSweep(runs)).toEqual({ k: 30, weight: 0.5, ndcgAt10: 0.71 });
    expect(bestOfSweep(null)).toBeNull();
    expect(bestOfSweep([])).toBeNull();
  });

  it('names a hybrid pass by its fusion, and whether the API filled it in', () => {
    expect(describeRun(modeRun('dense', 0.6, 1))).toBe('dense');
    expect(describeRun(modeRun('hybrid', 0.7, 1, { sent: {} }))).toBe(
      `hybrid (DBSF, weight ${DEFAULT_FUSION.weight}, the API's defaults)`,
    );
    expect(describeRun(modeRun('hybrid', 0.7, 1, { sent: { method: 'rrf', k: 30 } }))).toBe(
      `hybrid (RRF k 30, weight ${DEFAULT_RRF.weight}, the rest the API's defaults)`,
    );
    expect(
      describeRun(modeRun('hybrid', 0.7, 1, { sent: { method: 'rrf', k: 30, weight: 0.7 } })),
    ).toBe('hybrid (RRF k 30, weight 0.7)');
  });
});

describe('renderEval', () => {
  it('shows every mode with its metrics and latencies, both references and the deltas', () => {
    const md = renderEval(result());
    expect(md).toContain('# Heimdex eval — scifact train, minilm-l6-v2 (fp32)');
    const row = (label: string) => md.split('\n').find((l) => l.startsWith(`| ${label}`)) ?? '';
    expect(row('Heimdex dense ')).toMatch(
      /\| 0\.6602 +\| 0\.8602 +\| 0\.6302 +\| 120\.0 +\| 240\.0 +\|/,
    );
    expect(row('Heimdex keyword ')).toMatch(/\| 0\.6900 .*\| 60\.0 +\| 120\.0 +\|/);
    expect(row(`Heimdex hybrid (DBSF, weight ${DEFAULT_FUSION.weight}`)).toMatch(
      /\| 0\.7123 .*\| 150\.0 +\| 300\.0 +\|/,
    );
    expect(row('reference BM25')).toMatch(/k1 0\.9, b 0\.4.*\| 0\.6966 /);
    expect(row('delta (keyword − reference BM25)')).toMatch(/\| -0\.0066 /);
    expect(row('sentence-transformers 6.2.0')).toMatch(/\| 0\.6602 /);
    expect(row('delta (dense − sentence-transformers)')).toMatch(/\| \+0\.0000 /);
    expect(md).toContain('Keyword mode against the reference BM25: top-10 overlap 98.0%');
    expect(md).toContain('Dense mode against sentence-transformers: top-10 overlap 100.0%');
  });

  it('lists each check as met or not met with its figures', () => {
    const md = renderEval(result());
    expect(md).toContain('## Checks');
    expect(md).toMatch(
      /\| hybrid nDCG@10 ≥ dense \+ 0\.03 +\| hybrid 0\.7123, dense 0\.6602: \+0\.0521 \(needs ≥ \+0\.0300\) +\| \*\*met\*\* +\|/,
    );
    expect(md).toMatch(/\| hybrid nDCG@10 ≥ max\(dense, keyword\) .*\*\*met\*\*/);
    expect(md).toMatch(
      /\| keyword nDCG@10 within ±0\.02 .*keyword 0\.6900, BM25 0\.6966: -0\.0066 .*\*\*met\*\*/,
    );
    const missed = renderEval(
      result({
        heimdex: [
          settingRun('default', 0, {
            checks: computeChecks({
              dense: 0.6602,
              keyword: 0.69,
              hybrid: 0.68,
              reference: null,
              bm25: 0.6966,
            }),
          }),
        ],
      }),
    );
    expect(missed).toMatch(/≥ dense \+ 0\.03 .*\*\*not met\*\*/);
    expect(missed).toMatch(/max\(dense, keyword\) .*\*\*not met\*\*/);
    expect(missed).toMatch(/sentence-transformers' .*\| not measured +\|/);
  });

  it('renders the fusion sweep with its best setting', () => {
    const md = renderEval(result());
    expect(md).toContain('## Fusion sweep (hybrid)');
    // The last grid point scores best: 0.69 + 11/1000.
    expect(md).toMatch(/\| 100 +\| 0\.7 +\| 0\.7010 .*\| \+0\.0408 +\| met +\| met +\| 140\.0 +\|/);
    expect(md).toMatch(/\| 10 +\| 0\.3 +\| 0\.6900 .*\| \+0\.0298 +\| not met +\| met +\|/);
    expect(md).toContain(
      `Best nDCG@10 of the sweep: k 100, weight 0.7 (0.7010); the hybrid pass (k ${DEFAULT_FUSION.k}, weight ${DEFAULT_FUSION.weight}) scored 0.7123 (+0.0113).`,
    );
    expect(
      renderEval(result({ heimdex: [settingRun('default', 0, { sweep: null, sweepBest: null })] })),
    ).not.toContain('Fusion sweep');
  });

  it('reports the speed of each pass and hybrid against dense', () => {
    const md = renderEval(result());
    expect(md).toContain('8.6 texts/s (5183 in 600.0 s, 21 requests); 14.3 chunks/s (8580 points)');
    expect(md).toMatch(
      /search, keyword, through the Worker.*p50 60\.0 ms, p95 120\.0 ms, p99 180\.0 ms/,
    );
    expect(md).toMatch(/\| hybrid p50 \/ dense p50 +\| 1\.25× +\|/);
    expect(md).toMatch(/reference BM25 \(index \+ every query, in process\) +\| 10\.2 s/);
  });

  it('renders a single mode with no references and no sweep', () => {
    const md = renderEval(
      result({
        heimdex: [
          settingRun('default', 0, {
            modes: [modeRun('keyword', 0.69, 60)],
            sweep: null,
            sweepBest: null,
            vsReference: null,
            checks: computeChecks({
              dense: null,
              keyword: 0.69,
              hybrid: null,
              reference: null,
              bm25: 0.6966,
            }),
          }),
        ],
        reference: null,
        warnings: ['keyword: 3 queries got no result from Heimdex'],
      }),
    );
    expect(md).toContain('| Heimdex keyword ');
    expect(md).not.toContain('Heimdex dense');
    expect(md).not.toContain('sentence-transformers 6.2.0');
    expect(md).not.toContain('hybrid p50 / dense p50');
    expect(md.match(/not measured/g)).toHaveLength(3);
    expect(md).toContain('- keyword: 3 queries got no result from Heimdex');
  });

  it('compares chunking settings: settings × modes with deltas, the targets, each corpus', () => {
    const md = renderEval(
      multiResult([
        settingRun('truncate', 0, {
          ingest: ingestResult({ chunks: 5183, multiChunk: 0, truncated: 3681 }),
        }),
        settingRun('default', 0.01),
        settingRun('128:16', -0.002),
      ]),
    );
    const row = (start: string) => md.split('\n').find((l) => l.startsWith(start)) ?? '';
    expect(md).toContain("Each setting's passes against the first setting's (truncate):");
    expect(row('| truncate | dense ')).toMatch(/\| 0\.6602 +\| +\| 0\.8602 +\| +\|/);
    expect(row('| default  | hybrid ')).toMatch(
      /\| 0\.7223 +\| \+0\.0100 +\| 0\.9223 +\| \+0\.0100 +\| 0\.6923 +\| \+0\.0100 +\|/,
    );
    expect(row('| 128:16   | keyword ')).toMatch(/\| 0\.6880 +\| -0\.0020 +\|/);
    expect(md).toMatch(
      /\| dense nDCG@10, chunking default ≥ truncate +\| default 0\.6702, truncate 0\.6602: \+0\.0100 +\| \*\*met\*\* +\|/,
    );
    expect(md).toMatch(
      /\| hybrid nDCG@10, chunking 128:16 ≥ truncate .*-0\.0020 +\| \*\*not met\*\* +\|/,
    );
    // Each corpus: texts over the window, truncated, chunks, speed.
    expect(row('| truncate | 5183 ')).toMatch(
      /\| 5183 +\| 3681 +\| 3681 +\| 0 +\| 5183 +\| 1\.66, 9 +\| 314, 1937 +\| 8\.6 +\| 14\.3 +\|/,
    );
    expect(md).toContain('over the window (254 tokens)');
    // Every row elsewhere names its setting; one sweep per setting.
    expect(row('| Heimdex dense, chunking 128:16 ')).toMatch(/\| 0\.6582 /);
    expect(row('| delta (dense − sentence-transformers), chunking default ')).toMatch(/\+0\.0100/);
    expect(md).toMatch(/\| default +\| hybrid nDCG@10 ≥ dense \+ 0\.03 /);
    expect(md.match(/## Fusion sweep \(hybrid\) — chunking /g)).toHaveLength(3);
    expect(row('| ingest, chunking truncate ')).toContain('8.6 texts/s');
    expect(md).toContain('Jobs (chunking 128:16) followed with GET /batches/{batch_id}');
    expect(md).toContain('Dense mode (chunking default) against sentence-transformers');
    expect(md).toContain('With chunking, a pass differs from the references by design');
  });

  it('reads as before chunking with one setting: no comparison, no setting column', () => {
    const md = renderEval(result());
    expect(md).not.toContain("Each setting's passes");
    expect(md).not.toContain(', chunking default');
    expect(md).toContain('| Heimdex dense ');
    expect(md).toContain(`Ingested once (chunking: ${describeChunking(parseChunking('default'))})`);
    expect(md).toMatch(/\| default +\| 5183 +\| 3681 +\| 0 +\| 3681 +\| 8580 /);
  });
});

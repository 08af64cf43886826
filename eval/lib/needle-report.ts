/**
 * The needle test's JSON document, its targets and its Markdown rendering. The document holds the
 * needles and queries (made up here) and ids, offsets and numbers; never a corpus text.
 */
import type { RunEnvelope } from '../../bench/lib/envelope.js';
import type { Summary } from '../../bench/lib/stats.js';
import type { SearchMode } from '../../contract/internal.js';
import type { IngestResult } from './heimdex.js';
import { RANK_BUCKETS } from './needle.js';
import type { NeedleOutcome, NeedleSummary, NeedleText } from './needle.js';
import { corpusTable, f4, ms, runLine, statusText, table } from './report.js';
import type { SettingRun } from './report.js';

/** Without chunking, at most this share of needles may come first (chance is 1 in the texts). */
export const NOT_FOUND_MAX_SHARE = 0.05;

/** One chunking setting: the texts ingested into an organisation of its own, then each mode. */
export interface NeedleRun {
  chunking: SettingRun['chunking'];
  org: string;
  ingest: IngestResult;
  modes: {
    mode: SearchMode;
    summary: NeedleSummary;
    latencyMs: Summary;
    outcomes: NeedleOutcome[];
  }[];
}

export interface NeedleCheck {
  target: string;
  figures: string;
  status: 'met' | 'not met';
}

/** A built text as the document records it: no corpus text, its sources by id. */
export type NeedleTextRecord = Omit<NeedleText, 'text'> & { chars: number };

export interface NeedleResult extends RunEnvelope {
  schema: 'heimdex-needle/1';
  dataset: { name: string; corpus: { bytes: number; sha256: string } };
  model: {
    name: string;
    dir: string;
    dtype: string;
    files: Record<string, { bytes: number; sha256: string }>;
  };
  settings: {
    texts: number;
    /** Tokens of text before each needle, at least. */
    needleAfterTokens: number;
    minTextTokens: number;
    /** The model's text tokens per window. */
    window: number | null;
    /** Results per query (all the texts: every rank is known). */
    limit: number;
    modes: SearchMode[];
  };
  texts: NeedleTextRecord[];
  runs: NeedleRun[];
  checks: NeedleCheck[];
  warnings: string[];
}

const check = (target: string, ok: boolean, figures: string): NeedleCheck => ({
  target,
  figures,
  status: ok ? 'met' : 'not met',
});

/**
 * The acceptance, mode by mode: with chunking every needle's text first and its first chunk
 * holding the needle; with truncation, dense search (whose vector sees the first window only,
 * the needle beyond it) no better than chance. A truncated text's keyword index holds all of it
 * (BM25 has no window), so keyword and hybrid search with truncation are reported, not judged.
 */
export function needleChecks(runs: readonly NeedleRun[]): NeedleCheck[] {
  return runs.flatMap((run) =>
    run.modes.flatMap(({ mode, summary: s }) => {
      const where = `${mode}, chunking ${run.chunking.label}`;
      const first = `${s.rank1}/${s.queries} at rank 1`;
      if (run.chunking.request === 'truncate') {
        if (mode !== 'dense') return [];
        const most = Math.floor(NOT_FOUND_MAX_SHARE * s.queries);
        return [
          check(
            `${where}: the needle's text not first (≤ ${most} of ${s.queries})`,
            s.rank1 <= most,
            first,
          ),
        ];
      }
      const c = s.coverage;
      return [
        check(`${where}: every needle's text first`, s.rank1 === s.queries, first),
        check(
          `${where}: the first result's chunk (chunk_start, chunk_end) holds the needle`,
          s.rank1 > 0 && c.whole === s.rank1,
          `${c.whole} of ${s.rank1} whole, ${c.part} in part, ${c.none} not, ${c.unknown} without chunk offsets`,
        ),
      ];
    }),
  );
}

const range = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `${s[0] ?? '–'}–${s.at(-1) ?? '–'} (median ${s[s.length >> 1] ?? '–'})`;
};

export function renderNeedle(r: NeedleResult): string {
  const t = r.texts;
  const example = t[0];
  const out: string[] = [
    `# Heimdex needle test — ${t.length} long texts from ${r.dataset.name} abstracts, ${r.model.name} (${r.model.dtype})`,
    '',
    `Command: \`${r.command}\``,
    runLine(r),
    `Texts: ${range(t.map((x) => x.tokens))} tokens, ${range(t.map((x) => x.sources.length))} abstracts each; ` +
      `one needle sentence each, inserted at a sentence boundary after ${range(t.map((x) => x.tokensBefore))} tokens ` +
      `(the model's window: ${r.settings.window ?? '?'} tokens). One paraphrase query per needle, searched in every ` +
      `mode against each organisation (limit ${r.settings.limit}: every text's rank is known).`,
    ...(example ? ['', `Needle 0: "${example.needle}" — its query: "${example.query}"`] : []),
    '',
    "## Rank of the needle's text\n",
    table(
      [
        'chunking',
        'mode',
        ...RANK_BUCKETS.map(([label]) => `rank ${label}`),
        'not returned',
        'MRR',
        'rank-1 chunk holds the needle (whole / part / none)',
        'rank 1 from chunk > 0',
        'search p50 ms',
      ],
      r.runs.flatMap((run) =>
        run.modes.map(({ mode, summary: s, latencyMs }) => [
          run.chunking.label,
          mode,
          ...RANK_BUCKETS.map(([label]) => String(s.ranks[label] ?? 0)),
          String(s.ranks['not returned'] ?? 0),
          f4(s.mrr),
          `${s.coverage.whole} / ${s.coverage.part} / ${s.coverage.none}${s.coverage.unknown ? ` (${s.coverage.unknown} unknown)` : ''}`,
          String(s.rank1LaterChunk),
          ms(latencyMs.p50),
        ]),
      ),
    ),
    '',
    '## Checks\n',
    table(
      ['target', 'figures', 'status'],
      r.checks.map((c) => [c.target, c.figures, statusText(c.status)]),
    ),
    '',
    '## Ingest\n',
    ...corpusTable(r.runs),
  ];
  if (r.warnings.length > 0) out.push('', 'Warnings:', ...r.warnings.map((w) => `- ${w}`));
  return out.join('\n');
}

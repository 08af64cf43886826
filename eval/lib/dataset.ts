/**
 * A BEIR-format retrieval dataset: `corpus.jsonl` ({_id, title, text}), `queries.jsonl`
 * ({_id, text}) and `qrels/<split>.tsv` (query-id, corpus-id, score, with a header line). A
 * document's text is `title + " " + text`, stripped (BEIR's convention for dense retrievers, which
 * eval/reference.py applies too). The texts stay in memory: nothing here logs or writes them.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Qrels } from './metrics.js';

export interface Doc {
  id: string;
  text: string;
}

export interface Query {
  id: string;
  text: string;
}

export interface Dataset {
  name: string;
  dir: string;
  split: string;
  docs: Doc[];
  /** Documents left out because their title + text is blank (the API refuses blank texts). */
  blankDocs: number;
  /** The split's queries that have a judgement, in queries.jsonl order. */
  queries: Query[];
  qrels: Qrels;
  /** sha256 of each input file, so a result names exactly what it measured. */
  files: Record<string, { bytes: number; sha256: string }>;
}

/** BEIR's document text: title and body joined by one space, outer whitespace stripped. */
export function docText(title: string | undefined, text: string | undefined): string {
  return `${title ?? ''} ${text ?? ''}`.trim();
}

function jsonLines(file: string): unknown[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line, i) => {
      try {
        return JSON.parse(line) as unknown;
      } catch {
        throw new Error(`${file}:${i + 1} is not valid JSON`);
      }
    });
}

function record(value: unknown, file: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null)
    throw new Error(`${file}: a line is not an object`);
  return value as Record<string, unknown>;
}

const idOf = (r: Record<string, unknown>, file: string): string => {
  const id = r._id;
  if (typeof id !== 'string' && typeof id !== 'number')
    throw new Error(`${file}: a line has no _id`);
  return String(id);
};

/** Parses a BEIR qrels TSV (header line optional). */
export function parseQrels(tsv: string): Map<string, Map<string, number>> {
  const qrels = new Map<string, Map<string, number>>();
  for (const [i, line] of tsv.split('\n').entries()) {
    if (line.trim() === '') continue;
    const [query, doc, score] = line.split('\t').map((s) => s.trim());
    if (i === 0 && query === 'query-id') continue;
    const level = Number(score);
    if (!query || !doc || !Number.isInteger(level)) {
      throw new Error(`qrels line ${i + 1}: expected query-id, corpus-id and an integer score`);
    }
    let judged = qrels.get(query);
    if (!judged) qrels.set(query, (judged = new Map()));
    judged.set(doc, level);
  }
  return qrels;
}

function fileInfo(file: string): { bytes: number; sha256: string } {
  const bytes = readFileSync(file);
  return { bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

/** A corpus.jsonl's documents (blank ones left out and counted) and the file's checksum. */
export function loadCorpus(dir: string): {
  docs: Doc[];
  blankDocs: number;
  file: { bytes: number; sha256: string };
} {
  const corpusFile = path.join(dir, 'corpus.jsonl');
  const docs: Doc[] = [];
  let blankDocs = 0;
  const seen = new Set<string>();
  for (const line of jsonLines(corpusFile)) {
    const r = record(line, corpusFile);
    const id = idOf(r, corpusFile);
    if (seen.has(id)) throw new Error(`${corpusFile}: document id ${id} appears twice`);
    seen.add(id);
    const text = docText(
      typeof r.title === 'string' ? r.title : '',
      typeof r.text === 'string' ? r.text : '',
    );
    if (text === '') blankDocs++;
    else docs.push({ id, text });
  }
  return { docs, blankDocs, file: fileInfo(corpusFile) };
}

export function loadDataset(
  dir: string,
  split: string,
  opts: { limitQueries?: number } = {},
): Dataset {
  const queriesFile = path.join(dir, 'queries.jsonl');
  const qrelsFile = path.join(dir, 'qrels', `${split}.tsv`);
  const corpus = loadCorpus(dir);
  let qrels = parseQrels(readFileSync(qrelsFile, 'utf8'));
  const allQueries = jsonLines(queriesFile).map((line) => {
    const r = record(line, queriesFile);
    return { id: idOf(r, queriesFile), text: typeof r.text === 'string' ? r.text : '' };
  });
  let queries = allQueries.filter((q) => qrels.has(q.id) && q.text.trim() !== '');
  const withText = new Set(queries.map((q) => q.id));
  const missing = [...qrels.keys()].filter((id) => !withText.has(id));
  if (missing.length > 0) {
    throw new Error(`${missing.length} judged queries of ${split} have no text in queries.jsonl`);
  }
  if (opts.limitQueries !== undefined) {
    queries = queries.slice(0, opts.limitQueries);
    const kept = new Set(queries.map((q) => q.id));
    qrels = new Map([...qrels].filter(([id]) => kept.has(id)));
  }
  return {
    name: path.basename(path.resolve(dir)),
    dir: path.resolve(dir),
    split,
    docs: corpus.docs,
    blankDocs: corpus.blankDocs,
    queries,
    qrels,
    files: {
      'corpus.jsonl': corpus.file,
      'queries.jsonl': fileInfo(queriesFile),
      [`qrels/${split}.tsv`]: fileInfo(qrelsFile),
    },
  };
}

/**
 * Turning files into segments for `heimdex ingest`, and segments into request-sized chunks.
 *
 * - `.txt` / `.md`: one segment per paragraph (text between blank lines), ids `p1`, `p2`, ….
 * - `.jsonl`: one segment per non-blank line, `{"asset_id"?, "segment_id"?, "text"}`; the segment
 *   id defaults to `l<line number>`.
 * - The asset id defaults to the file's path below the folder given (or its name, for a file given
 *   directly), without the extension: `notes/today.md` in folder `notes` → `today`.
 *
 * Error messages name the file and line, never the text itself.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { chunkBySize } from '../../worker/src/lib/chunk.js';
import { CliError } from './errors.js';

export const EXTENSIONS = ['.txt', '.md', '.jsonl'] as const;

export interface Segment {
  asset_id: string;
  segment_id: string;
  text: string;
  /** `file:line` or `file#paragraph`, for messages. */
  source: string;
}

export interface InputFile {
  file: string;
  /** The asset id derived from the file's path. */
  asset: string;
}

/** Paragraphs: runs of non-blank lines, trimmed; line endings normalised. */
export function splitParagraphs(content: string): string[] {
  return content
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n')
    .split(/\n[ \t]*\n/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

const optionalId = (v: unknown): v is string | undefined =>
  v === undefined || (typeof v === 'string' && v.length > 0);

export function parseJsonl(content: string, file: string, defaultAsset: string): Segment[] {
  const out: Segment[] = [];
  const lines = content.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${file}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new CliError(`${where}: not valid JSON`);
    }
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw new CliError(`${where}: expected an object like {"text": "…"}`);
    }
    const r = row as Record<string, unknown>;
    if (typeof r.text !== 'string' || !r.text.trim()) {
      throw new CliError(`${where}: "text" must be a non-empty string`);
    }
    if (!optionalId(r.asset_id)) throw new CliError(`${where}: "asset_id" must be a string`);
    if (!optionalId(r.segment_id)) throw new CliError(`${where}: "segment_id" must be a string`);
    out.push({
      asset_id: r.asset_id ?? defaultAsset,
      segment_id: r.segment_id ?? `l${i + 1}`,
      text: r.text,
      source: where,
    });
  });
  return out;
}

export function segmentsOf(content: string, input: InputFile): Segment[] {
  if (input.file.toLowerCase().endsWith('.jsonl')) {
    return parseJsonl(content, input.file, input.asset);
  }
  return splitParagraphs(content).map((text, i) => ({
    asset_id: input.asset,
    segment_id: `p${i + 1}`,
    text,
    source: `${input.file}#${i + 1}`,
  }));
}

function assetId(relative: string): string {
  const ext = path.extname(relative);
  return relative
    .slice(0, relative.length - ext.length)
    .split(path.sep)
    .join('/');
}

const supported = (file: string) =>
  (EXTENSIONS as readonly string[]).includes(path.extname(file).toLowerCase());

function unreadable(file: string, err: unknown): CliError {
  const code = (err as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file or folder'
      : code === 'EACCES' || code === 'EPERM'
        ? 'permission denied'
        : code === 'EISDIR'
          ? 'is a folder'
          : err instanceof Error
            ? err.message
            : String(err);
  return new CliError(`cannot read ${file}: ${why}`);
}

/** Expands folders (recursively, hidden entries skipped, sorted) into the supported files. */
export async function collectFiles(paths: string[]): Promise<InputFile[]> {
  const out: InputFile[] = [];
  for (const given of paths) {
    let stat;
    try {
      stat = await fs.stat(given);
    } catch (err) {
      throw unreadable(given, err);
    }
    if (stat.isDirectory()) {
      let entries: string[];
      try {
        entries = (await fs.readdir(given, { recursive: true })).map(String);
      } catch (err) {
        throw unreadable(given, err);
      }
      const files = entries
        .filter((rel) => !rel.split(path.sep).some((part) => part.startsWith('.')))
        .filter(supported)
        .sort();
      for (const rel of files) {
        const file = path.join(given, rel);
        if ((await fs.stat(file)).isFile()) out.push({ file, asset: assetId(rel) });
      }
    } else {
      if (!supported(given)) {
        throw new CliError(`cannot ingest ${given}: supported files are ${EXTENSIONS.join(', ')}`);
      }
      out.push({ file: given, asset: assetId(path.basename(given)) });
    }
  }
  return out;
}

export interface Corpus {
  files: number;
  segments: Segment[];
}

/** Reads every input into segments; `asset` overrides the file-derived asset id. */
export async function readCorpus(paths: string[], asset?: string): Promise<Corpus> {
  const inputs = await collectFiles(paths);
  if (inputs.length === 0) {
    throw new CliError(`no ${EXTENSIONS.join(', ')} files in ${paths.join(', ')}`);
  }
  if (asset !== undefined && inputs.length > 1) {
    throw new CliError('--asset applies to a single file (several were given)');
  }
  const segments: Segment[] = [];
  const seen = new Map<string, string>();
  for (const input of inputs) {
    let content: string;
    try {
      content = await fs.readFile(input.file, 'utf8');
    } catch (err) {
      throw unreadable(input.file, err);
    }
    for (const s of segmentsOf(content, { ...input, asset: asset ?? input.asset })) {
      const key = `${s.asset_id}\u0000${s.segment_id}`;
      const first = seen.get(key);
      if (first) {
        throw new CliError(
          `${s.source}: segment "${s.segment_id}" of asset "${s.asset_id}" already comes from ${first}`,
        );
      }
      seen.set(key, s.source);
      segments.push(s);
    }
  }
  if (segments.length === 0) throw new CliError(`no text found in ${paths.join(', ')}`);
  return { files: inputs.length, segments };
}

/** The JSON size a segment adds to a batch request body. */
export function segmentBytes(s: Segment): number {
  return Buffer.byteLength(
    JSON.stringify({ asset_id: s.asset_id, segment_id: s.segment_id, text: s.text }) + ',',
  );
}

/**
 * Consecutive chunks of at most `maxItems` segments and (except for a single oversized segment,
 * which travels alone and gets the API's own answer) at most `maxBytes` of JSON.
 */
export function chunkSegments(
  segments: Segment[],
  opts: { maxItems: number; maxBytes: number },
): Segment[][] {
  return chunkBySize(segments, opts.maxItems, opts.maxBytes, segmentBytes);
}

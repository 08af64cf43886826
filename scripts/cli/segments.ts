/**
 * Turning files into segments for `heimdex ingest`, segments into request-sized chunks, and a
 * search hit back into the paragraph on disk it came from (the server keeps no text).
 *
 * - `.txt` / `.md`: one segment per paragraph (text between blank lines), ids `p1`, `p2`, …. In
 *   `.md`, a heading belongs to the paragraph after it (`# Pasta` + the recipe is one segment).
 * - `.jsonl`: one segment per non-blank line, `{"asset_id"?, "segment_id"?, "text"}`; the segment
 *   id defaults to `l<line number>`.
 * - The asset id is the file's path relative to the current folder (`notes/today.md`), so that
 *   `heimdex search` run from the same folder can show the paragraph of a hit. `--asset NAME` puts
 *   every file under one asset NAME instead, with the file in the segment id: `notes/today.md#p3`.
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
  /** `file:line`, for messages. */
  source: string;
}

export interface InputFile {
  /** The path to open. */
  file: string;
  /** The file's path relative to the current folder, with `/` separators: its id. */
  ref: string;
}

export interface Paragraph {
  text: string;
  /** 1-based line where the paragraph (or its heading) starts. */
  line: number;
}

const BLANK = /^[ \t]*$/;
const ATX_HEADING = /^ {0,3}#{1,6}(?:[ \t]|$)/;
const SETEXT_UNDERLINE = /^ {0,3}(?:=+|-+)[ \t]*$/;

/** A markdown paragraph that is only a heading (ATX `# …` lines, or a setext title + underline). */
function isHeading(lines: string[]): boolean {
  if (lines.every((l) => ATX_HEADING.test(l))) return true;
  return lines.length === 2 && !ATX_HEADING.test(lines[0]!) && SETEXT_UNDERLINE.test(lines[1]!);
}

/**
 * Paragraphs: runs of non-blank lines, trimmed, with the line each starts on; line endings
 * normalised. With `markdown`, headings join the paragraph that follows them (a heading with no
 * paragraph after it stays on its own).
 */
export function splitParagraphs(content: string, markdown = false): Paragraph[] {
  const lines = content
    .replace(/^\uFEFF/, '')
    .replace(/\r\n?/g, '\n')
    .split('\n');
  const runs: Array<{ lines: string[]; line: number }> = [];
  let run: { lines: string[]; line: number } | undefined;
  lines.forEach((l, i) => {
    if (BLANK.test(l)) run = undefined;
    else if (run) run.lines.push(l);
    else runs.push((run = { lines: [l], line: i + 1 }));
  });
  const out: Paragraph[] = [];
  let headings: Paragraph[] = [];
  for (const r of runs) {
    const p = { text: r.lines.join('\n').trim(), line: r.line };
    if (markdown && isHeading(r.lines)) {
      headings.push(p);
      continue;
    }
    const all = [...headings, p];
    out.push({ text: all.map((h) => h.text).join('\n\n'), line: all[0]!.line });
    headings = [];
  }
  if (headings.length > 0) {
    out.push({ text: headings.map((h) => h.text).join('\n\n'), line: headings[0]!.line });
  }
  return out;
}

const optionalId = (v: unknown): v is string | undefined =>
  v === undefined || (typeof v === 'string' && v.length > 0);

interface JsonlRow {
  text: string;
  asset_id?: string;
  segment_id?: string;
}

/** One JSONL line as a row, or the reason it is not one (never quoting the text). */
function parseRow(line: string): JsonlRow | string {
  let row: unknown;
  try {
    row = JSON.parse(line);
  } catch {
    return 'not valid JSON';
  }
  if (row === null || typeof row !== 'object' || Array.isArray(row)) {
    return 'expected an object like {"text": "…"}';
  }
  const r = row as Record<string, unknown>;
  if (typeof r.text !== 'string' || !r.text.trim()) return '"text" must be a non-empty string';
  if (!optionalId(r.asset_id)) return '"asset_id" must be a string';
  if (!optionalId(r.segment_id)) return '"segment_id" must be a string';
  return r as unknown as JsonlRow;
}

const jsonlLines = (content: string) => content.replace(/^\uFEFF/, '').split(/\r?\n/);

/**
 * Segments of a JSONL file: a row's own asset_id and segment_id win; otherwise `defaultAsset`
 * and `l<line>`, prefixed with `idPrefix` (the file, under `--asset`).
 */
export function parseJsonl(
  content: string,
  file: string,
  defaultAsset: string,
  idPrefix = '',
): Segment[] {
  const out: Segment[] = [];
  jsonlLines(content).forEach((line, i) => {
    if (!line.trim()) return;
    const where = `${file}:${i + 1}`;
    const row = parseRow(line);
    if (typeof row === 'string') throw new CliError(`${where}: ${row}`);
    out.push({
      asset_id: row.asset_id ?? defaultAsset,
      segment_id: row.segment_id ?? `${idPrefix}l${i + 1}`,
      text: row.text,
      source: where,
    });
  });
  return out;
}

const isMarkdown = (file: string) => path.extname(file).toLowerCase() === '.md';
const isJsonl = (file: string) => path.extname(file).toLowerCase() === '.jsonl';

/** A file's segments: under its own asset (its ref), or under `asset` with the ref in the ids. */
export function segmentsOf(content: string, input: InputFile, asset?: string): Segment[] {
  const assetId = asset ?? input.ref;
  const prefix = asset === undefined ? '' : `${input.ref}#`;
  if (isJsonl(input.file)) return parseJsonl(content, input.file, assetId, prefix);
  return splitParagraphs(content, isMarkdown(input.file)).map((p, i) => ({
    asset_id: assetId,
    segment_id: `${prefix}p${i + 1}`,
    text: p.text,
    source: `${input.file}:${p.line}`,
  }));
}

/** The id of a file: its path relative to `cwd`, with `/` separators. */
export function fileRef(file: string, cwd: string): string {
  return path.relative(cwd, path.resolve(cwd, file)).split(path.sep).join('/');
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
export async function collectFiles(paths: string[], cwd = process.cwd()): Promise<InputFile[]> {
  const out: InputFile[] = [];
  for (const given of paths) {
    const abs = path.resolve(cwd, given);
    let stat;
    try {
      stat = await fs.stat(abs);
    } catch (err) {
      throw unreadable(given, err);
    }
    if (stat.isDirectory()) {
      let entries: string[];
      try {
        entries = (await fs.readdir(abs, { recursive: true })).map(String);
      } catch (err) {
        throw unreadable(given, err);
      }
      const files = entries
        .filter((rel) => !rel.split(path.sep).some((part) => part.startsWith('.')))
        .filter(supported)
        .sort();
      for (const rel of files) {
        const file = path.join(given, rel);
        if ((await fs.stat(path.join(abs, rel))).isFile()) {
          out.push({ file, ref: fileRef(file, cwd) });
        }
      }
    } else {
      if (!supported(given)) {
        throw new CliError(`cannot ingest ${given}: supported files are ${EXTENSIONS.join(', ')}`);
      }
      out.push({ file: given, ref: fileRef(given, cwd) });
    }
  }
  return out;
}

export interface Corpus {
  files: number;
  segments: Segment[];
}

/**
 * Reads every input into segments. Each file is its own asset (its path relative to `cwd`), or,
 * with `asset`, every file goes under that one asset.
 */
export async function readCorpus(
  paths: string[],
  asset?: string,
  cwd = process.cwd(),
): Promise<Corpus> {
  const inputs = await collectFiles(paths, cwd);
  if (inputs.length === 0) {
    throw new CliError(`no ${EXTENSIONS.join(', ')} files in ${paths.join(', ')}`);
  }
  const segments: Segment[] = [];
  const seen = new Map<string, string>();
  for (const input of inputs) {
    let content: string;
    try {
      content = await fs.readFile(path.resolve(cwd, input.file), 'utf8');
    } catch (err) {
      throw unreadable(input.file, err);
    }
    for (const s of segmentsOf(content, input, asset)) {
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

/** What a search hit's segment reads like on this disk now. */
export interface LocalText {
  /** The file, as the ids name it (relative to the current folder). */
  file: string;
  /** Where the paragraph (or JSONL line) starts; undefined when it is no longer in the file. */
  line?: number;
  text?: string;
  /** The file is not here (moved, deleted, or search runs from another folder). */
  missing?: boolean;
  /** The text differs from what was embedded (its length, in code points, is not text_len). */
  changed: boolean;
}

const codePoints = (s: string) => [...s].length;

/**
 * The local text of a hit whose segment came from a file `heimdex ingest` read: the asset is the
 * file and the segment `p<N>`/`l<N>`, or the segment is `<file>#p<N>`/`<file>#l<N>` (`--asset`);
 * a JSONL row's own segment_id is looked up in the file named by the asset. Undefined for a hit
 * that names no supported file. `textLen` (the payload's text_len) tells whether it changed.
 */
export async function localText(
  assetId: string,
  segmentId: string,
  textLen: number | undefined,
  cwd = process.cwd(),
): Promise<LocalText | undefined> {
  const prefixed = /^(.+)#([pl][1-9]\d*)$/.exec(segmentId);
  const ref = prefixed ? prefixed[1]! : assetId;
  const local = prefixed ? prefixed[2]! : segmentId;
  if (!supported(ref) || path.isAbsolute(ref)) return undefined;
  const byNumber = /^([pl])([1-9]\d*)$/.exec(local);
  if (!byNumber && (prefixed || !isJsonl(ref))) return undefined;
  let content: string;
  try {
    content = await fs.readFile(path.resolve(cwd, ref), 'utf8');
  } catch {
    return { file: ref, missing: true, changed: true };
  }
  let found: { text: string; line: number } | undefined;
  if (isJsonl(ref)) {
    const lines = jsonlLines(content);
    const rowAt = (i: number) => {
      const row = lines[i] === undefined || !lines[i]!.trim() ? undefined : parseRow(lines[i]!);
      return typeof row === 'object' ? row : undefined;
    };
    if (byNumber?.[1] === 'l') {
      const row = rowAt(Number(byNumber[2]) - 1);
      if (row && row.segment_id === undefined)
        found = { text: row.text, line: Number(byNumber[2]) };
    }
    for (let i = 0; !found && i < lines.length; i++) {
      const row = rowAt(i);
      if (row?.segment_id === local) found = { text: row.text, line: i + 1 };
    }
  } else if (byNumber?.[1] === 'p') {
    found = splitParagraphs(content, isMarkdown(ref))[Number(byNumber[2]) - 1];
  }
  if (!found) return { file: ref, changed: true };
  return {
    file: ref,
    line: found.line,
    text: found.text,
    changed: textLen !== undefined && codePoints(found.text) !== textLen,
  };
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

/**
 * The scale section's plot: latency (p50, p99) and recall@10 against points in one organisation,
 * per store and mode, drawn as an SVG from the section's own results and converted to PNG with
 * sharp. `npm run bench -- --plot-scale A.json[,B.json…]` redraws it from results files (cells of
 * several runs together), beside the first one.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import type { ScaleCell, ScaleResult } from './scale-bench.js';

/** A cell as the plot takes it: `series` names its line (default: its store). */
export type PlotCell = ScaleCell & { series?: string };

export interface PlotSeries {
  /** e.g. "embedded dense". */
  label: string;
  store: ScaleCell['store'];
  mode: 'dense' | 'hybrid';
  /** Points in the organisation → value, smallest size first. */
  p50: [number, number][];
  p99: [number, number][];
  recall: [number, number][];
  /** The many-organisations cell: total points → p50, p99, recall (null if not measured). */
  manyOrgs: { points: number; p50: number; p99: number; recall: number } | null;
}

/** One series per store and mode, from the one-organisation cells (sizes ascending). */
export function scalePlotSeries(cells: readonly PlotCell[]): PlotSeries[] {
  const out: PlotSeries[] = [];
  const nameOf = (c: PlotCell) => c.series ?? c.store;
  for (const name of [...new Set(cells.map(nameOf))]) {
    const store = (cells.find((c) => nameOf(c) === name) as PlotCell).store;
    for (const mode of ['dense', 'hybrid'] as const) {
      const one = cells
        .filter((c) => nameOf(c) === name && c.scenario === 'one org')
        .filter((c) => mode === 'dense' || c.hybrid !== null)
        .sort((a, b) => a.points - b.points);
      if (one.length === 0) continue;
      const lat = (c: ScaleCell) => (mode === 'dense' ? c.dense : c.hybrid) as ScaleCell['dense'];
      const rec = (c: ScaleCell) => (mode === 'dense' ? c.recallDense : (c.recallHybrid ?? NaN));
      const many = cells.find(
        (c) => nameOf(c) === name && c.scenario === 'many orgs' && (mode === 'dense' || c.hybrid),
      );
      out.push({
        label: `${name} ${mode}`,
        store,
        mode,
        p50: one.map((c) => [c.points, lat(c).p50]),
        p99: one.map((c) => [c.points, lat(c).p99]),
        recall: one.map((c) => [c.points, rec(c)]),
        manyOrgs: many
          ? { points: many.points, p50: lat(many).p50, p99: lat(many).p99, recall: rec(many) }
          : null,
      });
    }
  }
  return out;
}

const COLORS: Record<string, string> = {
  'embedded dense': '#1f77b4',
  'embedded hybrid': '#2ca02c',
  'qdrant dense': '#d62728',
  'qdrant hybrid': '#ff7f0e',
};
/** Colours of further series (e.g. a second run's), in order. */
const MORE_COLORS = ['#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

/** Log-scale axis ticks: powers of ten in [lo, hi]. */
export function decades(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
  return out;
}

const esc = (s: string) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;');

/** The plot as SVG text. */
export function scalePlotSvg(result: ScaleResult, title: string): string {
  const series = scalePlotSeries(result.cells);
  let extra = 0;
  const colorOf = new Map(
    series.map((s) => [s.label, COLORS[s.label] ?? MORE_COLORS[extra++ % MORE_COLORS.length]]),
  );
  const W = 1200;
  const H = 584;
  const panel = { w: 470, h: 360, top: 84 };
  const lefts = [80, 680];
  const xs = series.flatMap((s) => [
    ...s.p50.map(([x]) => x),
    ...(s.manyOrgs ? [s.manyOrgs.points] : []),
  ]);
  const ys = series.flatMap((s) => [
    ...s.p50.map(([, y]) => y),
    ...s.p99.map(([, y]) => y),
    ...(s.manyOrgs ? [s.manyOrgs.p50, s.manyOrgs.p99] : []),
  ]);
  const xTicks = decades(Math.min(...xs, 1000), Math.max(...xs, 10_000));
  const yTicks = decades(
    Math.max(0.1, Math.min(...ys.filter((y) => y > 0), 1)),
    Math.max(...ys, 10),
  );
  const [x0, x1] = [xTicks[0] as number, xTicks.at(-1) as number];
  const [y0, y1] = [yTicks[0] as number, yTicks.at(-1) as number];
  const px = (left: number, x: number) =>
    left + ((Math.log10(x) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * panel.w;
  const pyLog = (y: number) =>
    panel.top +
    panel.h -
    ((Math.log10(Math.max(y, y0)) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * panel.h;
  const rLo = Math.min(
    0.5,
    ...series.flatMap((s) => s.recall.map(([, r]) => r)).filter(Number.isFinite),
  );
  const rMin = Math.floor(rLo * 10) / 10;
  const pyLin = (r: number) => panel.top + panel.h - ((r - rMin) / (1 - rMin)) * panel.h;
  const fmtX = (x: number) => (x >= 1e6 ? `${x / 1e6}M` : x >= 1e3 ? `${x / 1e3}k` : String(x));
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(title)}</text>`,
  );
  const frame = (left: number, label: string, yLabels: [number, string][]) => {
    parts.push(
      `<rect x="${left}" y="${panel.top}" width="${panel.w}" height="${panel.h}" fill="none" stroke="#333"/>`,
      `<text x="${left + panel.w / 2}" y="${panel.top - 10}" text-anchor="middle" font-weight="bold">${esc(label)}</text>`,
      `<text x="${left + panel.w / 2}" y="${panel.top + panel.h + 40}" text-anchor="middle">points in the organisation (log)</text>`,
    );
    for (const t of xTicks) {
      const x = px(left, t);
      parts.push(
        `<line x1="${x}" y1="${panel.top}" x2="${x}" y2="${panel.top + panel.h}" stroke="#ddd"/>`,
        `<text x="${x}" y="${panel.top + panel.h + 18}" text-anchor="middle">${fmtX(t)}</text>`,
      );
    }
    for (const [y, text] of yLabels) {
      parts.push(
        `<line x1="${left}" y1="${y}" x2="${left + panel.w}" y2="${y}" stroke="#ddd"/>`,
        `<text x="${left - 6}" y="${y + 4}" text-anchor="end">${text}</text>`,
      );
    }
  };
  frame(
    lefts[0] as number,
    'search latency, ms (log): p50 solid, p99 dashed',
    yTicks.map((t) => [pyLog(t), String(t)]),
  );
  const rTicks: [number, string][] = [];
  for (let r = rMin; r <= 1.0001; r += 0.1) rTicks.push([pyLin(r), r.toFixed(1)]);
  frame(lefts[1] as number, 'recall@10 against exact search', rTicks);
  // The latency targets at 1M: dense p99 50 ms; recall 0.95.
  parts.push(
    `<line x1="${lefts[0]}" y1="${pyLog(50)}" x2="${(lefts[0] as number) + panel.w}" y2="${pyLog(50)}" stroke="#999" stroke-dasharray="2,4"/>`,
    `<text x="${(lefts[0] as number) + 4}" y="${pyLog(50) - 4}" fill="#777" font-size="11">50 ms (dense p99 target at 1M)</text>`,
    `<line x1="${lefts[1]}" y1="${pyLin(0.95)}" x2="${(lefts[1] as number) + panel.w}" y2="${pyLin(0.95)}" stroke="#999" stroke-dasharray="2,4"/>`,
    `<text x="${(lefts[1] as number) + 4}" y="${pyLin(0.95) + 14}" fill="#777" font-size="11">0.95 (target at 1M)</text>`,
  );
  const line = (
    pts: [number, number][],
    left: number,
    py: (y: number) => number,
    color: string,
    dash: string,
  ) => {
    const finite = pts.filter(([, y]) => Number.isFinite(y));
    if (finite.length === 0) return;
    const d = finite
      .map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(left, x).toFixed(1)},${py(y).toFixed(1)}`)
      .join(' ');
    parts.push(
      `<path d="${d}" fill="none" stroke="${color}" stroke-width="2.2" ${dash ? `stroke-dasharray="${dash}"` : ''}/>`,
    );
    for (const [x, y] of finite) {
      parts.push(
        `<circle cx="${px(left, x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3.5" fill="${color}"/>`,
      );
    }
  };
  const diamond = (x: number, y: number, color: string) =>
    parts.push(
      `<path d="M${x},${y - 6} L${x + 6},${y} L${x},${y + 6} L${x - 6},${y} Z" fill="none" stroke="${color}" stroke-width="2"/>`,
    );
  for (const s of series) {
    const color = colorOf.get(s.label) ?? '#555';
    line(s.p50, lefts[0] as number, pyLog, color, '');
    line(s.p99, lefts[0] as number, pyLog, color, '6,4');
    line(s.recall, lefts[1] as number, pyLin, color, '');
    if (s.manyOrgs) {
      diamond(px(lefts[0] as number, s.manyOrgs.points), pyLog(s.manyOrgs.p50), color);
      if (Number.isFinite(s.manyOrgs.recall)) {
        diamond(px(lefts[1] as number, s.manyOrgs.points), pyLin(s.manyOrgs.recall), color);
      }
    }
  }
  // Legend.
  series.forEach((s, i) => {
    const x = 80 + (i % 3) * 360;
    const y = H - 52 + Math.floor(i / 3) * 22;
    parts.push(
      `<line x1="${x}" y1="${y}" x2="${x + 28}" y2="${y}" stroke="${colorOf.get(s.label) ?? '#555'}" stroke-width="3"/>`,
      `<text x="${x + 34}" y="${y + 4}">${esc(s.label)}</text>`,
    );
  });
  parts.push(
    `<text x="${W / 2}" y="48" text-anchor="middle" font-size="12">◇ = one organisation of many (dense/hybrid p50 and recall; x = all organisations' points)</text>`,
    '</svg>',
  );
  return parts.join('\n');
}

/** Writes the plot PNG for a scale result. */
export async function writeScalePlot(
  result: ScaleResult,
  title: string,
  file: string,
): Promise<void> {
  await sharp(Buffer.from(scalePlotSvg(result, title)))
    .png()
    .toFile(file);
}

/**
 * Redraws the plot from bench results JSON files (their `scale` parts; the cells of several runs,
 * e.g. the small sizes and a separate 1M run, are drawn together) into `pngFile`.
 */
export async function plotFromResults(
  jsonFiles: readonly string[],
  pngFile: string,
): Promise<void> {
  const docs = jsonFiles.map(
    (f) =>
      JSON.parse(readFileSync(f, 'utf8')) as {
        scale?: ScaleResult | null;
        startedAt?: string;
        machine?: { cpuModel?: string; cores?: number };
      },
  );
  const scales = docs.map((d, i) => {
    if (!d.scale) throw new Error(`${jsonFiles[i]} has no scale section`);
    return d.scale;
  });
  const first = scales[0] as ScaleResult;
  // The first file's cells keep their stores' names; a later file's are named after the file.
  const merged: ScaleResult = {
    ...first,
    cells: scales.flatMap((s, i) =>
      s.cells.map((c): PlotCell =>
        i === 0
          ? c
          : { ...c, series: `${c.store} (${path.basename(jsonFiles[i] as string, '.json')})` },
      ),
    ),
  };
  await writeScalePlot(merged, scaleTitle(docs[0] ?? {}), pngFile);
}

export function scaleTitle(doc: {
  startedAt?: string;
  machine?: { cpuModel?: string; cores?: number };
}): string {
  return `Heimdex vector stores: latency and recall against size (${doc.startedAt?.slice(0, 10) ?? ''}, ${doc.machine?.cpuModel ?? ''}, ${doc.machine?.cores ?? '?'} cores)`;
}

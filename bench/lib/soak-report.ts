/** The soak's section of the Markdown report (bench/lib/report.ts calls it). */
import type { SoakResult } from './soak.js';

const n1 = (x: number) =>
  !Number.isFinite(x) ? '–' : Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(1);
const pct = (x: number) => (!Number.isFinite(x) ? '–' : `${(x * 100).toFixed(0)}%`);

/** What the soak wrote, in words: "ingest" or "overwrites of 5000 segments", and the store. */
export function soakKind(s: SoakResult): string {
  const stream =
    s.stream === 'overwrite' ? `overwrites of ${s.overwriteSegments ?? '?'} segments` : 'ingest';
  return `${stream}, ${s.store === 'qdrant' ? 'Qdrant' : 'embedded LanceDB'} store`;
}

export function renderSoakSection(s: SoakResult): string[] {
  const out = [
    `## Soak: ${s.minutes} min ${soakKind(s)} (${s.variant})${s.minutes < 10 ? ' (SHORT: the target is 10 min, `--soak-minutes 10`)' : ''}\n\n` +
      `${s.texts} texts at ${n1(s.textsPerSecond)} texts/s${s.writes !== undefined ? ` (${s.writes} items sent in all)` : ''}; ` +
      `RSS baseline ${n1(s.rssMiB.baseline)} MiB → end ${n1(s.rssMiB.end)} MiB ` +
      `(drift ${pct(s.drift)}, largest deviation ${pct(s.maxDeviation)}, range ${n1(s.rssMiB.min)}–${n1(s.rssMiB.max)} MiB after ${s.warmupSeconds} s warm-up` +
      (s.rssGrowth
        ? `; least-squares slope ${n1(s.rssGrowth.perMillionWrites)} MiB per million writes`
        : '') +
      ')' +
      (s.heapUsedMiB
        ? `; V8 heap used ${n1(s.heapUsedMiB.start)} → ${n1(s.heapUsedMiB.end)} MiB.`
        : '.') +
      (s.unavailable503
        ? ` ${s.unavailable503} request${s.unavailable503 === 1 ? ' was' : 's were'} answered 503 (the store unavailable) and sent again.`
        : '') +
      (s.memoryIndexEnd
        ? ` At the end the in-memory search index held ${s.memoryIndexEnd.points} points in ${n1(s.memoryIndexEnd.vectorMiB)} MiB of vector arrays (0 once it is released above VECTOR_MEMORY_INDEX_MAX_ROWS).`
        : ''),
    '',
  ];
  const d = s.disk;
  if (d) {
    out.push(
      `Data dir: ${n1(d.mib.baseline)} MiB after the warm-up → ${n1(d.mib.end)} MiB at the end ` +
        `(drift ${pct(d.mib.drift)}, range ${n1(d.mib.min)}–${n1(d.mib.max)} MiB; slope ${n1(d.mib.perMillionWrites)} MiB per million writes); ` +
        `table files at the end: ${d.end.versions} versions (at most ${d.maxVersions}), ${d.end.dataFiles} data files, ` +
        `${d.end.deletionFiles} deletion files, ${d.end.indexFiles} index files.`,
      '',
    );
  }
  return out;
}

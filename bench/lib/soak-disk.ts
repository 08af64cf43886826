/**
 * The embedded store's footprint on disk, for the soak: bytes under the data dir, and the files
 * of each LanceDB table by kind (versions = manifests, data fragments, deletion files, index
 * files), which tell retained versions from live data.
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export interface DiskUsage {
  bytes: number;
  /** Files under `<table>.lance/` folders, summed over the tables. */
  versions: number;
  dataFiles: number;
  deletionFiles: number;
  indexFiles: number;
}

/** Walks `dir` (allocated bytes of regular files; a folder that vanishes mid-walk counts 0). */
export function diskUsage(dir: string): DiskUsage {
  const out: DiskUsage = { bytes: 0, versions: 0, dataFiles: 0, deletionFiles: 0, indexFiles: 0 };
  const walk = (d: string, kind: keyof DiskUsage | null): void => {
    let entries;
    try {
      entries = readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        const next =
          e.name === '_versions'
            ? 'versions'
            : e.name === 'data'
              ? 'dataFiles'
              : e.name === '_deletions'
                ? 'deletionFiles'
                : e.name === '_indices'
                  ? 'indexFiles'
                  : kind;
        walk(p, next);
      } else if (e.isFile()) {
        try {
          const st = statSync(p);
          out.bytes += st.blocks * 512;
        } catch {
          continue;
        }
        if (kind !== null && kind !== 'bytes') out[kind]++;
      }
    }
  };
  walk(dir, null);
  return out;
}

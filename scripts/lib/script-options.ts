/** The `--name value` options of the small measuring scripts (bench/lancedb-rss.ts, scripts/models/speed.ts). */
import { parseArgs } from 'node:util';

type OptionValues<D> = { [K in keyof D]: D[K] extends number ? number : string };

/**
 * Parses `--name value` options, each with a default: an option with a numeric default is a number
 * (NaN as the default: unset unless given), one with a string default a string. Unknown options
 * are an error.
 */
export function scriptOptions<const D extends Record<string, number | string>>(
  defaults: D,
): OptionValues<D> {
  const { values } = parseArgs({
    options: Object.fromEntries(
      Object.keys(defaults).map((name) => [name, { type: 'string' as const }]),
    ),
  });
  const parsed = Object.entries(defaults).map(([name, fallback]) => {
    const given = values[name];
    if (typeof given !== 'string') return [name, fallback];
    return [name, typeof fallback === 'number' ? Number(given) : given];
  });
  return Object.fromEntries(parsed) as OptionValues<D>;
}

/**
 * Splits `items` into consecutive chunks of at most `maxItems` items and `maxBytes` bytes (as
 * `sizeOf` counts them), in order. An item larger than `maxBytes` on its own gets a chunk of its
 * own rather than being dropped: the receiver answers for it.
 */
export function chunkBySize<T>(
  items: readonly T[],
  maxItems: number,
  maxBytes: number,
  sizeOf: (item: T) => number,
): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (current.length > 0 && (current.length >= maxItems || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

const utf8 = new TextEncoder();

/** UTF-8 bytes of a value's JSON. */
export function jsonBytes(value: unknown): number {
  return utf8.encode(JSON.stringify(value)).byteLength;
}

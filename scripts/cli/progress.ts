/**
 * A progress bar on stderr with rate and ETA. On a terminal it redraws one line; otherwise (CI,
 * pipes) it prints a line at most every few seconds and one at the end.
 */

export interface ProgressState {
  label: string;
  done: number;
  total: number;
  elapsedMs: number;
  unit: string;
  /** Extra text after the figures (e.g. "2 retries"). */
  note?: string;
}

export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export function formatRate(perSecond: number): string {
  if (!Number.isFinite(perSecond) || perSecond <= 0) return '–';
  return perSecond >= 100
    ? perSecond.toFixed(0)
    : perSecond >= 10
      ? perSecond.toFixed(1)
      : perSecond.toFixed(2);
}

export function formatProgress(p: ProgressState, width = 24): string {
  const frac = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(frac * width);
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  const rate = p.elapsedMs > 0 ? (p.done * 1000) / p.elapsedMs : 0;
  const remaining = p.total - p.done;
  const eta = remaining <= 0 ? 0 : rate > 0 ? (remaining / rate) * 1000 : Infinity;
  const pct = `${Math.floor(frac * 100)}%`.padStart(4);
  return (
    `${p.label.padEnd(10)} [${bar}] ${p.done}/${p.total} ${pct}  ` +
    `${formatRate(rate)} ${p.unit}/s  ETA ${remaining <= 0 ? '0s' : formatDuration(eta)}` +
    (p.note ? `  ${p.note}` : '')
  );
}

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
}

export class Progress {
  private done = 0;
  private readonly started = Date.now();
  private lastPrint = 0;
  private note = '';

  constructor(
    private readonly stream: ProgressStream,
    private readonly label: string,
    private readonly total: number,
    private readonly unit: string,
    private readonly enabled: boolean,
    private readonly intervalMs = 2000,
  ) {
    this.render(true);
  }

  set(done: number, note?: string): void {
    this.done = done;
    if (note !== undefined) this.note = note;
    this.render(false);
  }

  add(n: number): void {
    this.set(this.done + n);
  }

  finish(note?: string): void {
    if (note !== undefined) this.note = note;
    this.render(true);
    if (this.enabled && this.stream.isTTY) this.stream.write('\n');
  }

  private render(force: boolean): void {
    if (!this.enabled) return;
    const now = Date.now();
    const tty = Boolean(this.stream.isTTY);
    if (!force && now - this.lastPrint < (tty ? 100 : this.intervalMs)) return;
    this.lastPrint = now;
    const line = formatProgress({
      label: this.label,
      done: this.done,
      total: this.total,
      elapsedMs: now - this.started,
      unit: this.unit,
      note: this.note,
    });
    this.stream.write(tty ? `\r\x1b[2K${line}` : `${line}\n`);
  }
}

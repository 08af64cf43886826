/** Progress lines on stderr (stdout carries the final table). */
const started = performance.now();

export function progress(message: string): void {
  const s = (performance.now() - started) / 1000;
  const stamp = `${Math.floor(s / 60)}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
  process.stderr.write(`[bench ${stamp}] ${message}\n`);
}

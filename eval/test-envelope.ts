/** The run envelope the report tests render: a fixed start, machine and load. */
import type { RunEnvelope } from '../bench/lib/envelope.js';

export function testEnvelope(command: string, durationSeconds: number): RunEnvelope {
  const start = Date.parse('2026-12-02T10:00:00.000Z');
  return {
    command,
    startedAt: new Date(start).toISOString(),
    finishedAt: new Date(start + durationSeconds * 1000).toISOString(),
    durationSeconds,
    machine: {
      cpuModel: 'Test CPU',
      cores: 2,
      logicalCpus: 2,
      cpuFlags: [],
      memoryGiB: 8,
      platform: 'linux',
      arch: 'x64',
      kernel: '6',
      node: 'v22',
      packages: {},
      git: { commit: '0123456789abcdef', dirty: true },
    },
    loadAverage: { start: [1, 1, 1], end: [2, 2, 2] },
  };
}

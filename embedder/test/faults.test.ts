import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { Faults, storeHooks } from '../src/core/faults.js';
import type { VectorPoint } from '../src/store/types.js';
import { createLogger } from '../src/log.js';
import { useEmbedder } from './embedder-fixture.js';
import { TOKEN, embedItem, postSearch, sleep, tempDir, testConfig, until } from './helpers.js';

const item = (over: Record<string, unknown> = {}) => embedItem('fault-org', over);

describe('Faults (the fault-injection file)', () => {
  it('kill_mid_segment_prefix: SIGKILLs the process in a matching segment write only', async () => {
    const tmp = await tempDir('faults-kill');
    const kill = vi.spyOn(process, 'kill').mockImplementation(() => true);
    try {
      const file = path.join(tmp.dir, 'faults.json');
      const hooks = storeHooks(new Faults(file, createLogger('silent'), 0));
      const points = (segment: string) =>
        [{ payload: { segment_id: segment } }] as unknown as VectorPoint[];
      hooks.afterSegmentWrite?.(points('kill-1'));
      expect(kill).not.toHaveBeenCalled(); // no file: no faults
      await writeFile(file, JSON.stringify({ kill_mid_segment_prefix: 'kill-' }));
      hooks.afterSegmentWrite?.(points('other'));
      expect(kill).not.toHaveBeenCalled();
      hooks.afterSegmentWrite?.(points('kill-1'));
      expect(kill).toHaveBeenCalledExactlyOnceWith(process.pid, 'SIGKILL');
    } finally {
      kill.mockRestore();
      await tmp.remove();
    }
  });

  it('re-reads the file at most every 200 ms, and only when it changed', async () => {
    const tmp = await tempDir('faults-unit');
    const lines: string[] = [];
    try {
      const file = path.join(tmp.dir, 'faults.json');
      const faults = new Faults(
        file,
        createLogger('debug', (l) => lines.push(l)),
      );
      expect(faults.current()).toEqual({
        storeUnavailable: false,
        rejectSegmentPrefix: '',
        inferenceDelayMs: 0,
        killMidSegmentPrefix: '',
      });
      await writeFile(file, JSON.stringify({ store_unavailable: true }));
      expect(faults.current().storeUnavailable).toBe(false); // checked < 200 ms ago
      await sleep(220);
      expect(faults.current().storeUnavailable).toBe(true);

      // Half-written or invalid files keep the previous faults.
      await writeFile(file, '{"store_unavailable": fa');
      await sleep(220);
      expect(faults.current().storeUnavailable).toBe(true);
      await writeFile(file, JSON.stringify({ store_unavailble: false }));
      await sleep(220);
      expect(faults.current().storeUnavailable).toBe(true);
      expect(lines.some((l) => l.includes('fault injection file is invalid'))).toBe(true);

      await writeFile(file, JSON.stringify({ reject_segment_prefix: 'bad-' }));
      await sleep(220);
      expect(faults.current()).toMatchObject({
        storeUnavailable: false,
        rejectSegmentPrefix: 'bad-',
      });
      await rm(file);
      await sleep(220);
      expect(faults.current()).toMatchObject({ storeUnavailable: false, rejectSegmentPrefix: '' });
      expect(lines.filter((l) => l.includes('fault injection changed'))).toHaveLength(3);
    } finally {
      await tmp.remove();
    }
  });
});

describe('fault injection through the API', () => {
  let file = '';
  const served = useEmbedder('faults', (dir) => {
    file = path.join(dir, 'faults.json');
    return testConfig({ dataDir: path.join(dir, 'vectors'), faultsFile: file });
  });
  const { call, logs } = served;

  it('warns at start-up that faults are enabled', () => {
    const warning = logs.map((l) => JSON.parse(l)).find((l) => l.level === 'warn');
    expect(warning).toMatchObject({
      msg: 'fault injection is enabled: never run this in production',
      faults_file: file,
    });
  });

  it('fails every store call as a store outage while store_unavailable is on', async () => {
    expect((await call('POST', '/internal/embed', { items: [item()] })).status).toBe(200);
    await writeFile(file, JSON.stringify({ store_unavailable: true }));
    await until(async () => (await call('GET', '/readyz')).status === 503, '/readyz to fail');

    const embed = await call('POST', '/internal/embed', { items: [item({ segment_id: 's2' })] });
    expect(embed.status).toBe(503);
    expect(embed.headers.get('content-type')).toBe('application/problem+json');
    expect(embed.json).toMatchObject({ code: 'store_unavailable' });
    const search = await postSearch(call, 'fault-org');
    expect(search.json).toMatchObject({ status: 503, code: 'store_unavailable' });
    const del = await call('POST', '/internal/delete', { org_id: 'fault-org', asset_id: 'a1' });
    expect(del.json).toMatchObject({ status: 503, code: 'store_unavailable' });

    await writeFile(file, JSON.stringify({ store_unavailable: false }));
    await until(async () => (await call('GET', '/readyz')).status === 200, '/readyz to recover');
    const back = await postSearch(call, 'fault-org');
    expect(back.json.total).toBe(1); // the outage lost nothing
  });

  it('rejects items by segment_id prefix with a retryable injected_fault', async () => {
    await writeFile(file, JSON.stringify({ reject_segment_prefix: 'poison-' }));
    const items = [
      item({ segment_id: 'poison-1' }),
      item({ segment_id: 'healthy-1' }),
      item({ segment_id: 'poison-2', text: 'another text' }),
    ];
    let res = await call('POST', '/internal/embed', { items });
    await until(async () => {
      res = await call('POST', '/internal/embed', { items });
      return res.json.results[0].status === 'error';
    }, 'the prefix to apply');
    expect(res.status).toBe(200);
    for (const i of [0, 2]) {
      expect(res.json.results[i]).toEqual({
        job_id: items[i]?.job_id,
        status: 'error',
        code: 'injected_fault',
        retryable: true,
        message: 'fault injection: item rejected',
      });
    }
    expect(res.json.results[1]).toMatchObject({ status: 'ok', applied: true });
    const metrics = await (
      await fetch(`${served.embedder.url}/metrics`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      })
    ).text();
    expect(metrics).toMatch(/^heimdex_embedding_errors_total\{code="injected_fault"\} [1-9]/m);

    await rm(file);
    await until(async () => {
      const again = await call('POST', '/internal/embed', { items: [items[0]] });
      return again.json.results[0].status === 'ok';
    }, 'the prefix to be lifted');
  });
});

/**
 * A local WebSocket→TCP proxy for the Neon serverless driver, standing in for Neon's hosted proxy
 * in development and tests. The driver opens `ws://HOST:PORT/v1?address=DBHOST:DBPORT` and speaks
 * the Postgres wire protocol inside binary WebSocket frames; we pipe those bytes to the database.
 *
 * Only loopback database addresses are allowed, so the proxy cannot be used to reach elsewhere.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, createWebSocketStream } from 'ws';

export interface WsProxy {
  port: number;
  /** Value for the Worker's NEON_WS_PROXY setting (host:port/path, no protocol). */
  address: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '::1']);

export async function startWsProxy(opts: { port?: number; host?: string } = {}): Promise<WsProxy> {
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket upgrade required\n');
  });
  const wss = new WebSocketServer({ server, path: '/v1' });
  const sockets = new Set<net.Socket>();
  wss.on('connection', (ws, req) => {
    const target = new URL(req.url ?? '', 'http://x').searchParams.get('address') ?? '';
    const m = /^(.+):(\d+)$/.exec(target);
    if (!m || !LOOPBACK.has(m[1]!.replace(/^\[|\]$/g, ''))) {
      ws.close(1008, 'address not allowed');
      return;
    }
    const tcp = net.connect({ host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) });
    sockets.add(tcp);
    tcp.on('close', () => sockets.delete(tcp));
    const stream = createWebSocketStream(ws);
    stream.on('error', () => tcp.destroy());
    tcp.on('error', () => ws.terminate());
    stream.pipe(tcp).pipe(stream);
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    address: `${host}:${port}/v1`,
    close: async () => {
      for (const s of sockets) s.destroy();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

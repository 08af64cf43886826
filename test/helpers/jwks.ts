/**
 * A local identity provider for AUTH_PROVIDER=jwks tests: an HTTP server on 127.0.0.1 serving a
 * JWKS with one RSA (RS256) and one EC (ES256) public key, and helpers to mint tokens with the
 * matching private keys.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, importJWK } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';

/** RS512 and PS256 sign with the same RSA key material as RS256: the JWKS key, another algorithm. */
export type SignAlg = 'RS256' | 'ES256' | 'RS512' | 'PS256';

export interface JwksServer {
  url: string;
  issuer: string;
  audience: string;
  rsa: { kid: string; privateKey: CryptoKey; publicJwk: JWK; publicPem: string };
  ec: { kid: string; privateKey: CryptoKey };
  /** How many times the key set was fetched. */
  fetches(): number;
  /** Signs `claims` (defaults: iss, aud, iat, exp in 1 h) with the RSA key, RS256. */
  sign(
    claims: JWTPayload,
    opts?: { alg?: SignAlg; kid?: string; key?: CryptoKey },
  ): Promise<string>;
  close(): Promise<void>;
}

export async function startJwksServer(
  opts: { issuer?: string; audience?: string } = {},
): Promise<JwksServer> {
  const rsaPair = await generateKeyPair('RS256', { extractable: true });
  const ecPair = await generateKeyPair('ES256', { extractable: true });
  const rsaJwk = {
    ...(await exportJWK(rsaPair.publicKey)),
    kid: 'rsa-1',
    alg: 'RS256',
    use: 'sig',
  };
  const ecJwk = { ...(await exportJWK(ecPair.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' };
  const body = JSON.stringify({ keys: [rsaJwk, ecJwk] });
  let fetches = 0;
  const server = http.createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const issuer = opts.issuer ?? `http://127.0.0.1:${port}/auth/v1`;
  const audience = opts.audience ?? 'authenticated';
  const rsa = {
    kid: 'rsa-1',
    privateKey: rsaPair.privateKey,
    publicJwk: rsaJwk,
    publicPem: await exportSPKI(rsaPair.publicKey),
  };
  const ec = { kid: 'ec-1', privateKey: ecPair.privateKey };
  return {
    url: `http://127.0.0.1:${port}/.well-known/jwks.json`,
    issuer,
    audience,
    rsa,
    ec,
    fetches: () => fetches,
    sign: async (claims, o = {}) => {
      const alg = o.alg ?? 'RS256';
      let key = o.key ?? (alg === 'ES256' ? ec.privateKey : rsa.privateKey);
      if (!o.key && (alg === 'RS512' || alg === 'PS256')) {
        key = (await importJWK(await exportJWK(rsa.privateKey), alg)) as CryptoKey;
      }
      const kid = o.kid ?? (alg === 'ES256' ? ec.kid : rsa.kid);
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, aud: audience, iat: now, exp: now + 3600, ...claims })
        .setProtectedHeader({ alg, kid, typ: 'JWT' })
        .sign(key);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

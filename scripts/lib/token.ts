import { SignJWT } from 'jose';

/** Mints a dev-mode HS256 token for `org`, as the Worker's AUTH_PROVIDER=dev expects. */
export async function mintDevToken(opts: {
  secret: string;
  org: string;
  subject?: string;
  ttlSeconds?: number;
}): Promise<string> {
  return new SignJWT({ org_id: opts.org })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(opts.subject ?? 'dev-user')
    .setIssuedAt()
    .setExpirationTime(`${opts.ttlSeconds ?? 3600}s`)
    .sign(new TextEncoder().encode(opts.secret));
}

/** Encryption of queued texts (AES-256-GCM bound to the job), inside workerd's Web Crypto. */
import { describe, expect, it } from 'vitest';
import { TextCipher, TextDecryptError, decodeKey } from '../src/lib/text-cipher';

const newKey = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));
const job = { org_id: 'acme', job_id: crypto.randomUUID(), seq: 7 };
const TEXT = 'Ünïcode text, emoji 🐕 and all';

describe('TextCipher', () => {
  it('round-trips a text, with a fresh IV each time and no plaintext in the ciphertext', async () => {
    const c = await TextCipher.create(newKey());
    const a = await c.encrypt(TEXT, job);
    const b = await c.encrypt(TEXT, job);
    expect(a.data).not.toBe(b.data);
    expect(a.kid).toBe(b.kid);
    expect(JSON.stringify(a)).not.toContain('emoji');
    expect(atob(a.data.replace(/-/g, '+').replace(/_/g, '/'))).not.toContain('emoji');
    expect(await c.decrypt(a, job)).toBe(TEXT);
  });

  it.each([
    ['another organisation', { ...job, org_id: 'globex' }],
    ['another job', { ...job, job_id: crypto.randomUUID() }],
    ['another seq', { ...job, seq: 8 }],
  ])('refuses a ciphertext moved to %s', async (_what, other) => {
    const c = await TextCipher.create(newKey());
    const enc = await c.encrypt(TEXT, job);
    await expect(c.decrypt(enc, other)).rejects.toBeInstanceOf(TextDecryptError);
  });

  it('refuses a tampered ciphertext and an unknown key', async () => {
    const c = await TextCipher.create(newKey());
    const enc = await c.encrypt(TEXT, job);
    const i = 20;
    const flipped =
      enc.data.slice(0, i) + (enc.data[i] === 'A' ? 'B' : 'A') + enc.data.slice(i + 1);
    await expect(c.decrypt({ ...enc, data: flipped }, job)).rejects.toBeInstanceOf(
      TextDecryptError,
    );
    const stranger = await TextCipher.create(newKey());
    await expect(stranger.decrypt(enc, job)).rejects.toThrow(/no key with id/);
  });

  it('rotates: the previous key still decrypts, the new key encrypts', async () => {
    const oldKey = newKey();
    const nextKey = newKey();
    const before = await (await TextCipher.create(oldKey)).encrypt(TEXT, job);
    const rotating = await TextCipher.create(nextKey, oldKey);
    expect(await rotating.decrypt(before, job)).toBe(TEXT);
    const after = await rotating.encrypt(TEXT, job);
    expect(after.kid).not.toBe(before.kid);
    const done = await TextCipher.create(nextKey);
    expect(await done.decrypt(after, job)).toBe(TEXT);
    await expect(done.decrypt(before, job)).rejects.toBeInstanceOf(TextDecryptError);
  });

  it('accepts only 32-byte base64 or base64url keys', () => {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const b64 = btoa(String.fromCharCode(...raw));
    expect(decodeKey(b64)).toEqual(raw);
    expect(decodeKey(b64.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''))).toEqual(raw);
    expect(() => decodeKey(btoa('too short'))).toThrow(/32 bytes/);
    expect(() => decodeKey('not base64 at all!')).toThrow(/base64/);
  });
});

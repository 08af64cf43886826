/**
 * Encryption of the one piece of user text Heimdex holds: the text of a job between its submission
 * and its embedding, in the outbox row and the Queue message. Deleting a terminal job's outbox row
 * removes the row, but Postgres keeps old row versions in its files and WAL (and Neon in its
 * history) for a while: with the text encrypted, none of those copies, nor the queue's storage,
 * ever holds it in the clear. The consumer decrypts it just before the embedder call.
 *
 * AES-256-GCM (Web Crypto), a random 96-bit IV per text, and additional data binding each
 * ciphertext to its job (org, job id, seq): a ciphertext moved to another job or tenant does not
 * decrypt. Every ciphertext names its key (a short fingerprint), so a key can be rotated:
 * TEXT_ENCRYPTION_KEY encrypts, TEXT_ENCRYPTION_KEY_PREVIOUS still decrypts what was queued before.
 */

export const KEY_BYTES = 32;
const IV_BYTES = 12;

/** Binds a ciphertext to one job of one organisation. */
export interface TextBinding {
  org_id: string;
  job_id: string;
  seq: number;
}

/** The encrypted form carried by the outbox row and the Queue message. */
export interface EncryptedText {
  /** Fingerprint of the key that encrypted it. */
  kid: string;
  /** base64url(IV ‖ ciphertext ‖ GCM tag). */
  data: string;
}

/** The ciphertext cannot be read: unknown key, tampered data, or bound to another job. */
export class TextDecryptError extends Error {
  override readonly name = 'TextDecryptError';
}

interface LoadedKey {
  kid: string;
  key: CryptoKey;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes a key given as base64 or base64url; throws unless it is exactly 32 bytes. */
export function decodeKey(encoded: string): Uint8Array {
  const b64 = encoded.trim().replace(/-/g, '+').replace(/_/g, '/');
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  } catch {
    throw new Error('must be base64 (e.g. `openssl rand -base64 32`)');
  }
  if (bytes.length !== KEY_BYTES) {
    throw new Error(`must decode to ${KEY_BYTES} bytes (got ${bytes.length})`);
  }
  return bytes;
}

function toBase64Url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(s: string): Uint8Array {
  return Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
}

function additionalData(b: TextBinding): Uint8Array<ArrayBuffer> {
  return Uint8Array.from(
    encoder.encode(JSON.stringify(['heimdex-text-v1', b.org_id, b.job_id, b.seq])),
  );
}

async function loadKey(raw: Uint8Array<ArrayBuffer>): Promise<LoadedKey> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', raw));
  const kid = toBase64Url(digest.subarray(0, 6));
  const key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']);
  return { kid, key };
}

export class TextCipher {
  private constructor(
    private readonly current: LoadedKey,
    private readonly byKid: Map<string, LoadedKey>,
  ) {}

  /** `current` encrypts and decrypts; `previous` (rotation) only decrypts. Base64 keys. */
  static async create(current: string, previous?: string): Promise<TextCipher> {
    const cur = await loadKey(decodeKey(current) as Uint8Array<ArrayBuffer>);
    const keys = new Map([[cur.kid, cur]]);
    if (previous) {
      const prev = await loadKey(decodeKey(previous) as Uint8Array<ArrayBuffer>);
      keys.set(prev.kid, prev);
    }
    return new TextCipher(cur, keys);
  }

  async encrypt(text: string, binding: TextBinding): Promise<EncryptedText> {
    const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: additionalData(binding) },
        this.current.key,
        Uint8Array.from(encoder.encode(text)),
      ),
    );
    const out = new Uint8Array(IV_BYTES + sealed.length);
    out.set(iv);
    out.set(sealed, IV_BYTES);
    return { kid: this.current.kid, data: toBase64Url(out) };
  }

  async decrypt(enc: EncryptedText, binding: TextBinding): Promise<string> {
    const key = this.byKid.get(enc.kid);
    if (!key) throw new TextDecryptError(`no key with id ${enc.kid}`);
    try {
      const bytes = fromBase64Url(enc.data);
      const plain = await crypto.subtle.decrypt(
        {
          name: 'AES-GCM',
          iv: bytes.subarray(0, IV_BYTES),
          additionalData: additionalData(binding),
        },
        key.key,
        bytes.subarray(IV_BYTES),
      );
      return decoder.decode(plain);
    } catch {
      throw new TextDecryptError('ciphertext does not authenticate for this job and key');
    }
  }
}

const cache = new Map<string, Promise<TextCipher>>();

/** One TextCipher per key pair per isolate (key import is async and costs a little). */
export function textCipher(current: string, previous?: string): Promise<TextCipher> {
  const id = `${current}\u0000${previous ?? ''}`;
  let c = cache.get(id);
  if (!c) {
    c = TextCipher.create(current, previous);
    cache.set(id, c);
    c.catch(() => cache.delete(id));
  }
  return c;
}

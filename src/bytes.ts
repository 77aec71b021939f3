/**
 * Byte helpers shared by the server and the client SDK, on web-standard
 * globals only (`btoa`/`atob`, typed arrays), so they run on every runtime and
 * in browsers.
 */

/** UTF-8 length of a string, counted without encoding it (a lone surrogate counts as U+FFFD, 3 bytes, as TextEncoder writes it). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4; // a surrogate pair is one 4-byte code point
      i++;
    } else n += 3;
  }
  return n;
}

/** A random 96-bit id as 16 base64url characters: connection ids travel in every message frame, so they stay short. */
export function randomId(): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(12)))
    .replaceAll("+", "-")
    .replaceAll("/", "_");
}

// String.fromCharCode takes its bytes as arguments; 32 Ki arguments stay far
// below every engine's argument limit.
const CHUNK = 0x8000;

/** Standard base64 of bytes (the long-polling `{"b": …}` frame). */
export function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/** Bytes of a standard base64 string; throws on invalid input (atob's DOMException). */
export function fromBase64(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Bytes the SDK owns: always a fresh copy on a plain ArrayBuffer. */
export type Bytes = Uint8Array<ArrayBuffer>;

/**
 * A private copy of the bytes of a buffer or view. The browser snapshots data
 * at `send()`; copying keeps that promise while a frame waits in a queue and
 * the caller reuses its buffer.
 */
export function copyBytes(data: ArrayBufferLike | ArrayBufferView): Bytes {
  const view = viewOf(data);
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return copy;
}

/** The bytes of a buffer or view, as a Uint8Array over the same memory (no copy). */
export function viewOf(data: ArrayBufferLike | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(data)
    ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : new Uint8Array(data);
}

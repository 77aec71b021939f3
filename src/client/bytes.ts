/**
 * Byte helpers of the client SDK, on web-standard globals only (`btoa`/`atob`,
 * typed arrays), so the same code runs in browsers, Node, Deno and Bun.
 */

/** Shared with the server: UTF-8 length without encoding, base64 for polling frames. */
export { fromBase64, toBase64, utf8Length } from "../bytes.ts";

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

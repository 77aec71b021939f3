/**
 * A WebSocket client written against the raw TCP socket, for the cases no
 * well-behaved client can send: invalid UTF-8, reserved bits, bad opcodes,
 * fragments, unmasked frames, garbage before and after the handshake.
 */
import { randomBytes } from "node:crypto";
import { connect, type Socket } from "node:net";

/** A frame as received from the server. */
export interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Build a frame; masked (as a client must) unless `mask` is false. */
export function frame(
  opcode: number,
  payload: Buffer | string,
  options: { fin?: boolean; rsv?: number; mask?: boolean } = {},
): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload) : payload;
  const { fin = true, rsv = 0, mask = true } = options;
  const head: number[] = [(fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 15)];
  const m = mask ? 0x80 : 0;
  if (data.length < 126) head.push(m | data.length);
  else if (data.length < 65536) head.push(m | 126, data.length >> 8, data.length & 255);
  else {
    head.push(m | 127, 0, 0, 0, 0);
    head.push((data.length >>> 24) & 255, (data.length >>> 16) & 255, (data.length >>> 8) & 255, data.length & 255);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = randomBytes(4);
  const body = Buffer.alloc(data.length);
  for (let i = 0; i < data.length; i++) body[i] = (data[i] as number) ^ (key[i & 3] as number);
  return Buffer.concat([Buffer.from(head), key, body]);
}

/** A close frame's payload: code and reason. */
export const closePayload = (code: number, reason: Buffer | string = "") =>
  Buffer.concat([Buffer.from([code >> 8, code & 255]), typeof reason === "string" ? Buffer.from(reason) : reason]);

/** A raw connection: what the server sent, parsed into frames after the handshake. */
export class RawSocket {
  readonly socket: Socket;
  #buffer = Buffer.alloc(0);
  #handshaken = false;
  /** the HTTP response head of the handshake */
  response = "";
  readonly frames: RawFrame[] = [];
  ended = false;
  #waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on("data", (d: Buffer) => this.#data(d));
    const end = () => {
      this.ended = true;
      this.#wake();
    };
    socket.on("close", end);
    socket.on("error", end);
  }

  /** open TCP to `port` (nothing sent yet) */
  static open(port: number, host = "127.0.0.1"): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const s = connect(port, host, () => resolve(new RawSocket(s)));
      s.once("error", reject);
    });
  }

  /** open and complete a WebSocket handshake on `path`; rejects with the status line if refused */
  static async upgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<RawSocket> {
    const raw = await RawSocket.open(port);
    raw.write(upgradeRequest(path, headers));
    await raw.until(() => raw.#handshaken || raw.ended, 10_000);
    if (!raw.response.startsWith("HTTP/1.1 101")) throw new Error(`upgrade refused: ${raw.response.split("\r\n")[0]}`);
    return raw;
  }

  /** write bytes as they are */
  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** wait until `test` holds (checked on every arrival) or `ms` pass */
  async until(test: () => boolean, ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!test()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
    return true;
  }

  /** wait for the server's close frame (or the connection's end); its code, 1006 if none came */
  async closeCode(ms = 10_000): Promise<number> {
    await this.until(() => this.ended || this.frames.some((f) => f.opcode === 8), ms);
    const close = this.frames.find((f) => f.opcode === 8);
    if (!close) return 1006;
    return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
  }

  /** the next data frame (text, binary) after `index` */
  async dataFrame(index = 0, ms = 10_000): Promise<RawFrame | undefined> {
    const data = () => this.frames.filter((f) => f.opcode === 1 || f.opcode === 2 || f.opcode === 0);
    await this.until(() => data().length > index || this.ended, ms);
    return data()[index];
  }

  /** destroy the connection */
  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  #data(d: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, d]);
    if (!this.#handshaken) {
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end < 0) {
        this.#wake();
        return;
      }
      this.response = this.#buffer.subarray(0, end).toString("latin1");
      this.#buffer = this.#buffer.subarray(end + 4);
      this.#handshaken = true;
    }
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) break;
      let len = (b[1] as number) & 127;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) break;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) break;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) break;
      this.frames.push({
        fin: ((b[0] as number) & 0x80) !== 0,
        opcode: (b[0] as number) & 15,
        payload: b.subarray(off, off + len),
      });
      this.#buffer = b.subarray(off + len);
    }
    this.#wake();
  }
}

/** A valid upgrade request for `path`. */
export function upgradeRequest(path: string, headers: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    Host: "127.0.0.1",
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
    "Sec-WebSocket-Version": "13",
    ...headers,
  };
  return `GET ${path} HTTP/1.1\r\n${Object.entries(all)
    .map(([k, v]) => `${k}: ${v}`)
    .join("\r\n")}\r\n\r\n`;
}

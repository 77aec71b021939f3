/** A bare long-polling client for tests: raw HTTP, so the tests check the protocol itself. */

/** One frame of the polling protocol. */
export type WireFrame = { t: string } | { b: string };

/** A GET's answer. */
export interface PollAnswer {
  cursor: number;
  frames: WireFrame[];
  close?: { code: number; reason: string };
}

/** A long-polling session on `{route}/poll`. */
export class PollClient {
  cursor = 0;
  #n = 0;
  private constructor(
    readonly base: string,
    readonly sid: string,
  ) {}

  /** open a session on `route` (an http URL of /echo or /rooms/:room) */
  static async open(route: string, protocol?: string): Promise<PollClient> {
    const res = await fetch(`${route}/poll`, {
      method: "POST",
      headers: protocol ? { "x-edgewire-protocol": protocol } : {},
    });
    if (res.status !== 200)
      throw Object.assign(new Error(`open: HTTP ${res.status}`), { status: res.status, body: await res.text() });
    const { sid } = (await res.json()) as { sid: string };
    return new PollClient(route, sid);
  }

  /** one GET from `cursor` (default: the client's own), without advancing */
  async get(cursor = this.cursor): Promise<{ status: number; answer: PollAnswer }> {
    const res = await fetch(`${this.base}/poll/${this.sid}?cursor=${cursor}`);
    return { status: res.status, answer: (await res.json()) as PollAnswer };
  }

  /** GET and advance the cursor */
  async poll(): Promise<PollAnswer> {
    const { status, answer } = await this.get();
    if (status !== 200) throw Object.assign(new Error(`poll: HTTP ${status}`), { status, answer });
    this.cursor = answer.cursor;
    return answer;
  }

  /** poll until `count` frames arrived (or the session closed) */
  async collect(count: number, ms = 15_000): Promise<{ frames: WireFrame[]; close?: PollAnswer["close"] }> {
    const deadline = Date.now() + ms;
    const frames: WireFrame[] = [];
    while (frames.length < count) {
      if (Date.now() > deadline) throw new Error(`only ${frames.length} of ${count} frames within ${ms} ms`);
      const answer = await this.poll();
      frames.push(...answer.frames);
      if (answer.close) return { frames, close: answer.close };
    }
    return { frames };
  }

  /** send frames as one POST; `n` defaults to the next number */
  async send(frames: WireFrame[], n = ++this.#n): Promise<number> {
    const res = await fetch(`${this.base}/poll/${this.sid}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ n, frames }),
    });
    await res.body?.cancel();
    return res.status;
  }

  /** close the session */
  async close(code = 1000, reason = ""): Promise<number> {
    const res = await fetch(`${this.base}/poll/${this.sid}?code=${code}&reason=${encodeURIComponent(reason)}`, {
      method: "DELETE",
    });
    await res.body?.cancel();
    return res.status;
  }
}

/** The JSON in a text frame. */
export const json = <T = Record<string, unknown>>(frame: WireFrame | undefined): T => {
  if (!frame || !("t" in frame)) throw new Error(`expected a text frame, got ${JSON.stringify(frame)}`);
  return JSON.parse(frame.t) as T;
};

/**
 * TLS for tests: a self-signed certificate for 127.0.0.1 made with openssl,
 * and the clients that trust it — `ws` given it as a CA, a `fetch` over
 * node:https (global fetch cannot be given a CA), and the SPKI hash Chromium
 * trusts a certificate by.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import WebSocket from "ws";
import type { FetchLike, WebSocketConstructor } from "../../src/client/index.ts";

/** A certificate and key on disk, and the ways to trust it. */
export interface TestCertificate {
  certFile: string;
  keyFile: string;
  /** the certificate (PEM), to trust as a CA */
  ca: string;
  /** base64 SHA-256 of its public key, for `--ignore-certificate-errors-spki-list` */
  spki: string;
  /** `ws` that trusts it */
  WebSocket: WebSocketConstructor;
  /** a fetch that trusts it */
  fetch: FetchLike;
}

/** Make a P-256 certificate for 127.0.0.1 and localhost, valid two days. */
export function makeCertificate(): TestCertificate {
  const dir = mkdtempSync(join(tmpdir(), "edgewire-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  const req = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  const subject = ["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"];
  execFileSync("openssl", [...req, ...subject, "-keyout", keyFile, "-out", certFile], { stdio: "ignore" });
  const ca = readFileSync(certFile, "utf8");
  const spki = execFileSync("sh", [
    "-c",
    `openssl x509 -in '${certFile}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
  ])
    .toString()
    .trim();
  class TrustingWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { ca });
    }
  }
  return {
    certFile,
    keyFile,
    ca,
    spki,
    WebSocket: TrustingWebSocket as unknown as WebSocketConstructor,
    fetch: httpsFetch(ca),
  };
}

/** A minimal fetch over node:https trusting `ca`: what the SDK's long-polling needs (method, headers, body, signal). */
export function httpsFetch(ca: string): FetchLike {
  return (input, init = {}) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(String(input));
      const headers = Object.fromEntries(new Headers(init.headers as HeadersInit | undefined).entries());
      const req = request(
        url,
        { method: init.method ?? "GET", headers, ca, signal: init.signal ?? undefined },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const out = new Headers();
            for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out.set(k, String(v));
            resolve(
              new Response(res.statusCode === 204 ? null : Buffer.concat(chunks), {
                status: res.statusCode,
                headers: out,
              }),
            );
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(init.body === undefined || init.body === null ? undefined : (init.body as string | Uint8Array));
    });
}

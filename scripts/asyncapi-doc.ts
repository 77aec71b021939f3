/**
 * Write docs/asyncapi.json: the AsyncAPI 3.0 document of the service `npm
 * start` runs, exactly as its app serves it at /asyncapi.json (asked of the
 * app itself, so the file cannot differ from what is served). `npm run
 * docs:asyncapi` rewrites it; a unit test fails when it is behind the code.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { service } from "../service/service.ts";
import { ASYNCAPI_PATH } from "../src/http/app.ts";

const root = resolve(import.meta.dirname, "..");

/** Where the committed document lives. */
export const ASYNCAPI_FILE = resolve(root, "docs/asyncapi.json");

/** The document's text as committed: the served JSON, indented, with a final newline. */
export async function serviceAsyncApi(): Promise<string> {
  const response = await service.app.request(ASYNCAPI_PATH);
  if (response.status !== 200) throw new Error(`${ASYNCAPI_PATH} answered ${response.status}`);
  return `${JSON.stringify(await response.json(), null, 2)}\n`;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  writeFileSync(ASYNCAPI_FILE, await serviceAsyncApi());
  console.log("docs/asyncapi.json rewritten");
}

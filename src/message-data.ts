/**
 * What message data may be, on every encoding: JSON's data model, nested at
 * most MAX_DATA_DEPTH deep. History, Redis and the JSON members of a room
 * carry every message as JSON, so a MessagePack publish must not hold what
 * JSON cannot; and a serialiser meeting data nested thousands deep overflows
 * its stack (V8's JSON.stringify at ~10 000 levels), which would surface as a
 * server fault instead of the client's error.
 */

/** How deep message data may nest: Ruby's JSON default; deeper input is refused, not a fault deep in a serialiser. */
export const MAX_DATA_DEPTH = 100;

/**
 * Why `value` is not message data, or undefined when it is: nested deeper than
 * MAX_DATA_DEPTH, or (decoded MessagePack) holding what JSON cannot (bytes,
 * extension types, non-finite numbers). Iterative, so no input can exhaust
 * the stack; it stops at the first problem. With `strict` false (what a
 * handler publishes: it goes out as JSON.stringify writes it, Dates as
 * strings, NaN as null) only the depth is checked.
 */
export function dataIssue(value: unknown, strict = true): string | undefined {
  if (typeof value !== "object" || value === null) return strict ? scalarIssue(value) : undefined;
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  while (stack.length > 0) {
    const item = stack.pop();
    const depth = depths.pop() as number;
    if (depth > MAX_DATA_DEPTH) return `nested deeper than ${MAX_DATA_DEPTH} levels`;
    const children = Array.isArray(item)
      ? item
      : Object.getPrototypeOf(item) === Object.prototype
        ? Object.values(item as object)
        : undefined;
    if (!children) {
      if (!strict) continue;
      return item instanceof Uint8Array ? "bytes inside data (send them as a binary frame)" : "not JSON data";
    }
    for (const child of children) {
      if (typeof child === "object" && child !== null) {
        stack.push(child);
        depths.push(depth + 1);
      } else if (strict) {
        const issue = scalarIssue(child);
        if (issue) return issue;
      }
    }
  }
  return undefined;
}

function scalarIssue(value: unknown): string | undefined {
  switch (typeof value) {
    case "string":
    case "boolean":
      return undefined;
    case "number":
      return Number.isFinite(value) ? undefined : "a non-finite number";
    case "object": // null
      return undefined;
    default:
      return `a ${typeof value} value is not JSON data`;
  }
}

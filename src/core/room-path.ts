/**
 * A room route's path and the room it names. A path has one or more named parameters
 * (`/rooms/:room`, `/auction/:item`, `/org/:org/board/:board`), and the room is the whole tuple
 * of their values. Everywhere a room is named — the Durable Object, Redis keys, history,
 * presence, frames, token claims, metrics — it is one string: the values joined by "/" in path
 * order (`acme/b1`; one parameter: its value, so `/rooms/:room` rooms are named as they always
 * were). A value never holds "/" (room names are letters, digits, `_`, `-`, `.`), so the join is
 * unambiguous. Shared by the server and the SDK.
 */

/** The parameter names of a path, in order: `/org/:org/board/:board` → `["org", "board"]`. */
export function pathParams(path: string): string[] {
  return path
    .split("/")
    .filter((segment) => segment.startsWith(":"))
    .map((segment) => segment.slice(1));
}

/** The names of a path's parameters, as a type: `"/org/:org/board/:board"` → `"org" | "board"`. */
export type ParamNames<P extends string> = P extends `${string}:${infer Name}/${infer Rest}`
  ? Name | ParamNames<`/${Rest}`>
  : P extends `${string}:${infer Name}`
    ? Name
    : never;

/** A room's parameters, typed from its route's path (`{ org: string; board: string }`); any names for a path typed `string`. */
export type RoomParams<P extends string = string> = string extends P
  ? Readonly<Record<string, string>>
  : { readonly [K in ParamNames<P>]: string };

/** The room a tuple of parameter values names: the values in path order, joined by "/". */
export function roomName(names: readonly string[], params: Readonly<Record<string, string | undefined>>): string {
  return names.map((name) => params[name] ?? "").join("/");
}

/** The parameters of room `room` on a path with these parameter names; undefined when the count differs. */
export function roomParams(names: readonly string[], room: string): Record<string, string> | undefined {
  const values = names.length === 1 ? [room] : room.split("/");
  if (values.length !== names.length) return undefined;
  return Object.fromEntries(names.map((name, i) => [name, values[i] as string]));
}

/** The path with room `room`'s values in place of its parameters (`/org/acme/board/b1`). */
export function roomPath(path: string, room: string): string {
  const values = pathParams(path).length === 1 ? [room] : room.split("/");
  let i = 0;
  return path
    .split("/")
    .map((segment) => (segment.startsWith(":") ? (values[i++] ?? "") : segment))
    .join("/");
}

/** The parameter values `path` gives route path `pattern` (`/org/:org/board/:board`), or undefined when it does not match. */
export function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split("/");
  const have = path.split("/");
  if (want.length !== have.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const segment = want[i] as string;
    const value = have[i] as string;
    if (segment.startsWith(":")) {
      if (value === "") return undefined;
      params[segment.slice(1)] = value;
    } else if (segment !== value) return undefined;
  }
  return params;
}

/**
 * Room patterns in token claims: `rooms` (where its holder may join), `publish`
 * (where it may publish), `push` (where a backend may push). A pattern is a
 * room name or `route:room`, with `*` matching any run of characters.
 */

/** A glob over `route:room` keys: `*` matches any run of characters; a pattern without `:` matches the room on any route. */
export function roomPatternMatches(pattern: string, route: string, room: string): boolean {
  const subject = pattern.includes(":") ? `${route}:${room}` : room;
  const parts = pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"));
  return new RegExp(`^${parts.join(".*")}$`).test(subject);
}

/** Whether `claims[name]` (a list of patterns, or absent = no restriction) allows `route:room`. */
export function claimAllows(
  claims: Record<string, unknown> | undefined,
  name: string,
  route: string,
  room: string,
): boolean {
  const patterns = claims?.[name];
  if (patterns === undefined) return true;
  if (patterns === true) return true;
  if (!Array.isArray(patterns)) return false;
  return patterns.some((p) => typeof p === "string" && roomPatternMatches(p, route, room));
}

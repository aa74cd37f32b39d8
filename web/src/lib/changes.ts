// Event details carry whole objects before and after a change; the log
// shows what differs, which is what an operator reads it for.

const NOISE = new Set(["version", "created_at", "updated_at"]);

function show(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function listed(value: Record<string, unknown>): string {
  return Object.entries(value)
    .filter(([key]) => !NOISE.has(key))
    .map(([key, v]) => `${key}=${show(v)}`)
    .join(", ");
}

export function describeChange(before: unknown, after: unknown): string {
  if (isObject(before) && isObject(after)) {
    const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
    const changed = [...keys]
      .filter((k) => !NOISE.has(k))
      .filter((k) => show(before[k]) !== show(after[k]))
      .map((k) => `${k} ${show(before[k])} → ${show(after[k])}`);
    return changed.length > 0 ? changed.join(", ") : "no visible change";
  }
  if (isObject(after)) {
    return listed(after);
  }
  if (isObject(before)) {
    return `was ${listed(before)}`;
  }
  if (after !== undefined && after !== null) {
    return show(after);
  }
  return before !== undefined && before !== null ? `was ${show(before)}` : "";
}

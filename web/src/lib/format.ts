export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return "–";
  }
  return new Intl.NumberFormat("en", { maximumFractionDigits: 1 }).format(
    value,
  );
}

export function formatPct(
  value: number | null | undefined,
  digits = 1,
): string {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    return "–";
  }
  return `${value.toFixed(digits)} %`;
}

// The API gives rates as 0..1.
export function formatRatio(value: number | null | undefined): string {
  return formatPct(value === null || value === undefined ? value : value * 100);
}

export function formatTime(value: string | number | null | undefined): string {
  if (value === null || value === undefined || value === "") {
    return "–";
  }
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

export const PRIORITY_NAMES = ["P0 (highest)", "P1", "P2 (lowest)"] as const;

export function priorityName(priority: number): string {
  return PRIORITY_NAMES[priority] ?? `P${priority}`;
}

// Client-side checks that mirror the admin API's own (admin/openapi.yaml),
// so a form refuses what the server would refuse and says why in words.
// Each check returns null when the value is acceptable.

export const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const MAX_TOKENS = 1099511627776; // 2^40, the API's ceiling
export const MAX_REASON_CHARS = 256;
export const MAX_RESERVED_RATIO = 0.9;
export const MAX_EMERGENCY_S = 86400;

export type Check = string | null;

function isBlank(value: unknown): boolean {
  return value === undefined || value === null || value === "";
}

export function checkId(value: unknown, what: string): Check {
  if (isBlank(value)) {
    return `Enter the ${what}.`;
  }
  if (typeof value !== "string" || !ID_PATTERN.test(value)) {
    return (
      `The ${what} may use only letters, digits, ".", "_" and "-", ` +
      "1 to 64 characters."
    );
  }
  return null;
}

export function checkTokens(
  value: unknown,
  what: string,
  min = 0,
  max = MAX_TOKENS,
): Check {
  if (isBlank(value)) {
    return `Enter the ${what}.`;
  }
  if (typeof value !== "number" || !Number.isInteger(value)) {
    return `The ${what} must be a whole number.`;
  }
  if (value < min) {
    return `The ${what} must be at least ${min}.`;
  }
  if (value > max) {
    return `The ${what} must be at most ${max}.`;
  }
  return null;
}

export function checkBurst(burst: unknown, guaranteed: unknown): Check {
  const range = checkTokens(burst, "burst quota");

  if (range) {
    return range;
  }
  if (typeof guaranteed === "number" && (burst as number) < guaranteed) {
    return "The burst quota must be at least the guaranteed quota.";
  }
  return null;
}

export function checkPriority(value: unknown): Check {
  if (value === 0 || value === 1 || value === 2) {
    return null;
  }
  return "The priority must be 0 (highest), 1 or 2.";
}

export function checkRatio(value: unknown): Check {
  if (typeof value !== "number" || Number.isNaN(value)) {
    return "Enter the reserved ratio.";
  }
  if (value < 0 || value > MAX_RESERVED_RATIO) {
    return `The reserved ratio must be between 0 and ${MAX_RESERVED_RATIO}.`;
  }
  return null;
}

export function checkReason(value: unknown, required: boolean): Check {
  const text = typeof value === "string" ? value.trim() : "";

  if (required && text === "") {
    return "Give a reason: it is recorded in the event log.";
  }
  if (text.length > MAX_REASON_CHARS) {
    return `The reason must be at most ${MAX_REASON_CHARS} characters.`;
  }
  return null;
}

export interface AppDraft {
  app_id: string;
  cluster_id: string;
  guaranteed_quota: number | null;
  burst_quota: number | null;
  priority: number;
  max_borrow: number | null;
  cost_profile: string;
}

export type AppErrors = Partial<Record<keyof AppDraft, string>>;

export function checkApp(draft: AppDraft): AppErrors {
  const errors: AppErrors = {};
  const found: [keyof AppDraft, Check][] = [
    ["app_id", checkId(draft.app_id, "application id")],
    ["cluster_id", checkId(draft.cluster_id, "storage cluster")],
    [
      "guaranteed_quota",
      checkTokens(draft.guaranteed_quota, "guaranteed quota"),
    ],
    ["burst_quota", checkBurst(draft.burst_quota, draft.guaranteed_quota)],
    ["priority", checkPriority(draft.priority)],
    ["max_borrow", checkTokens(draft.max_borrow, "borrowing limit")],
    ["cost_profile", checkId(draft.cost_profile, "cost profile")],
  ];

  for (const [field, message] of found) {
    if (message) {
      errors[field] = message;
    }
  }
  return errors;
}

// Adapts a check to the validator shape Element Plus form rules take.
export function rule(check: (value: unknown) => Check) {
  return {
    trigger: ["blur", "change"],
    validator: (
      _rule: unknown,
      value: unknown,
      done: (error?: Error) => void,
    ) => {
      const message = check(value);
      done(message ? new Error(message) : undefined);
    },
  };
}

// The one place that talks HTTP to the admin daemon: it adds the token,
// turns every failure into an ApiError that carries words a person can
// read, and reports a 401 so the session can end.

import type { ErrorBody } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  query?: Query;
  body?: unknown;
  // false for the login call: its 401 means a wrong password, not an
  // expired session.
  auth?: boolean;
}

interface ClientHooks {
  token: () => string | null;
  unauthorized: () => void;
}

const hooks: ClientHooks = {
  token: () => null,
  unauthorized: () => undefined,
};

export function configureClient(next: Partial<ClientHooks>): void {
  Object.assign(hooks, next);
}

export function buildUrl(path: string, query?: Query): string {
  const params = new URLSearchParams();

  for (const [key, value] of Object.entries(query ?? {})) {
    if (value !== undefined && value !== null && value !== "") {
      params.set(key, String(value));
    }
  }

  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

function isErrorBody(value: unknown): value is ErrorBody {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as ErrorBody).error === "string" &&
    typeof (value as ErrorBody).message === "string"
  );
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();

  if (text === "") {
    return undefined;
  }
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function request<T>(
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  const useAuth = options.auth !== false;
  const token = useAuth ? hooks.token() : null;
  let response: Response;

  if (token) {
    headers.Authorization = `Bearer ${token}`;
  }
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
  }

  try {
    response = await fetch(buildUrl(path, options.query), {
      method,
      headers,
      body:
        options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiError(
      0,
      "network",
      "The admin daemon could not be reached; check that it is running " +
        "and that the network is up.",
    );
  }

  const body = await readBody(response);

  if (response.ok) {
    return body as T;
  }

  if (response.status === 401 && useAuth) {
    hooks.unauthorized();
  }

  if (isErrorBody(body)) {
    throw new ApiError(response.status, body.error, body.message);
  }
  throw new ApiError(
    response.status,
    `http_${response.status}`,
    `The admin daemon answered ${response.status} ` +
      `${response.statusText || "without an explanation"}.`.trimEnd(),
  );
}

// A stand-in for the admin daemon's HTTP answers in component tests: each
// route is a function of the request, and every call is recorded.
import { vi } from "vitest";

export interface Call {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  body: unknown;
}

export type Handler = (call: Call) => { status?: number; body?: unknown };

export function json(status: number, body?: unknown) {
  return { status, body };
}

export function installFakeApi(routes: Record<string, Handler>) {
  const calls: Call[] = [];

  const fetchFake = vi.fn(async (input: string, init: RequestInit = {}) => {
    const url = new URL(input, "http://dashboard.test");
    const call: Call = {
      method: init.method ?? "GET",
      path: url.pathname,
      query: url.searchParams,
      headers: (init.headers ?? {}) as Record<string, string>,
      body: init.body ? JSON.parse(String(init.body)) : undefined,
    };
    calls.push(call);

    const handler = routes[`${call.method} ${call.path}`];
    if (!handler) {
      return new Response(
        JSON.stringify({ error: "not_found", message: "no such route" }),
        { status: 404 },
      );
    }
    const answer = handler(call);
    const status = answer.status ?? 200;
    const text =
      answer.body === undefined
        ? null
        : typeof answer.body === "string"
          ? answer.body
          : JSON.stringify(answer.body);
    return new Response(status === 204 ? null : text, { status });
  });

  vi.stubGlobal("fetch", fetchFake);
  return calls;
}

import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError, buildUrl, configureClient, request } from "../src/api/http";
import { describeError } from "../src/lib/errors";
import { installFakeApi, json } from "./fake-api";

// The ApiError a call is expected to end with.
async function failureOf(call: Promise<unknown>): Promise<ApiError> {
  try {
    await call;
  } catch (error) {
    return error as ApiError;
  }
  throw new Error("the call succeeded");
}

afterEach(() => {
  vi.unstubAllGlobals();
  configureClient({ token: () => null, unauthorized: () => undefined });
});

describe("the API client", () => {
  it("sends the session token as a bearer on every call", async () => {
    const calls = installFakeApi({
      "GET /api/v1/apps": () => json(200, { items: [] }),
    });
    configureClient({ token: () => "tok-1" });

    await request("GET", "/api/v1/apps");

    expect(calls[0].headers.Authorization).toBe("Bearer tok-1");
  });

  it("leaves empty query values out of the URL", () => {
    expect(
      buildUrl("/x", { a: 1, b: "", c: undefined, d: null, e: "p q" }),
    ).toBe("/x?a=1&e=p+q");
  });

  it("turns an error body into an ApiError with the server's words", async () => {
    installFakeApi({
      "POST /api/v1/apps": () =>
        json(409, {
          error: "conflict",
          message: "guaranteed total 900 exceeds 800",
        }),
    });

    const failure = await failureOf(
      request("POST", "/api/v1/apps", { body: {} }),
    );

    expect(failure).toBeInstanceOf(ApiError);
    expect(failure.status).toBe(409);
    expect(failure.code).toBe("conflict");
    expect(describeError(failure)).toBe(
      "Conflict: guaranteed total 900 exceeds 800",
    );
  });

  it("describes an answer without a JSON error body", async () => {
    installFakeApi({
      "GET /api/v1/apps": () => json(502, "<html>bad gateway</html>"),
    });

    const failure = await failureOf(request("GET", "/api/v1/apps"));

    expect(describeError(failure)).toMatch(/answered 502/);
  });

  it("says the daemon cannot be reached when the network fails", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn().mockRejectedValue(new TypeError("Failed to fetch")),
    );

    const failure = await failureOf(request("GET", "/api/v1/apps"));

    expect(failure.code).toBe("network");
    expect(describeError(failure)).toMatch(/could not be reached/);
  });

  it("reports a 401 so the session ends, except on the login call", async () => {
    const unauthorized = vi.fn();
    installFakeApi({
      "GET /api/v1/apps": () =>
        json(401, { error: "unauthorized", message: "token expired" }),
      "POST /api/v1/auth/login": () =>
        json(401, { error: "unauthorized", message: "bad password" }),
    });
    configureClient({ token: () => "old", unauthorized });

    await request("POST", "/api/v1/auth/login", {
      body: {},
      auth: false,
    }).catch(() => undefined);
    expect(unauthorized).not.toHaveBeenCalled();

    await request("GET", "/api/v1/apps").catch(() => undefined);
    expect(unauthorized).toHaveBeenCalledTimes(1);
  });
});

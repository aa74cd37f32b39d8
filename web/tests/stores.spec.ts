import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPinia, setActivePinia } from "pinia";
import { configureClient } from "../src/api/http";
import { useAuthStore } from "../src/stores/auth";
import { useAppsStore } from "../src/stores/apps";
import { useEventsStore } from "../src/stores/events";
import { gatewayStatus, useGatewaysStore } from "../src/stores/gateways";
import { useClustersStore } from "../src/stores/clusters";
import type { App } from "../src/api/types";
import { installFakeApi, json } from "./fake-api";

function makeApp(i: number): App {
  return {
    app_id: `app-${String(i).padStart(3, "0")}`,
    cluster_id: "c1",
    guaranteed_quota: 10,
    burst_quota: 20,
    priority: (i % 3) as App["priority"],
    max_borrow: 0,
    cost_profile: "standard",
  };
}

// The application list the fake daemon serves: 1200 apps, so a priority
// filter has to read more than one page of 500.
const ALL_APPS = Array.from({ length: 1200 }, (_, i) => makeApp(i));

function servedApps(query: URLSearchParams) {
  const prefix = query.get("prefix") ?? "";
  const limit = Number(query.get("limit") ?? 50);
  const offset = Number(query.get("offset") ?? 0);
  const kept = ALL_APPS.filter((a) => a.app_id.startsWith(prefix));
  return json(200, {
    items: kept.slice(offset, offset + limit),
    total: kept.length,
    limit,
    offset,
  });
}

beforeEach(() => {
  setActivePinia(createPinia());
  sessionStorage.clear();
});

afterEach(() => {
  vi.unstubAllGlobals();
  configureClient({ token: () => null, unauthorized: () => undefined });
});

describe("auth store", () => {
  it("keeps the token for the session and sends it afterwards", async () => {
    const calls = installFakeApi({
      "POST /api/v1/auth/login": () =>
        json(200, { token: "jwt-1", expires_at: 4102444800, role: "operator" }),
      "GET /api/v1/apps": () => json(200, { items: [], total: 0 }),
    });
    const auth = useAuthStore();
    configureClient({ token: () => auth.token });

    await auth.login("sre", "secret");
    await useAppsStore().fetchPage();

    expect(calls[0].body).toEqual({ username: "sre", password: "secret" });
    expect(calls[0].headers.Authorization).toBeUndefined();
    expect(calls[1].headers.Authorization).toBe("Bearer jwt-1");
    expect(auth.canOperate).toBe(true);
    expect(auth.isAdmin).toBe(false);
    expect(JSON.parse(sessionStorage.getItem("tollgate.session")!).token).toBe(
      "jwt-1",
    );
  });

  it("asks who it is when the login answer has no role", async () => {
    installFakeApi({
      "POST /api/v1/auth/login": () =>
        json(200, { token: "t", expires_at: 4102444800 }),
      "GET /api/v1/auth/me": () =>
        json(200, { username: "ro", role: "viewer" }),
    });
    const auth = useAuthStore();
    configureClient({ token: () => auth.token });

    await auth.login("ro", "pw");

    expect(auth.role).toBe("viewer");
    expect(auth.canOperate).toBe(false);
  });

  it("keeps nothing when the password is wrong", async () => {
    installFakeApi({
      "POST /api/v1/auth/login": () =>
        json(401, {
          error: "unauthorized",
          message: "wrong user name or password",
        }),
    });
    const auth = useAuthStore();

    await expect(auth.login("sre", "bad")).rejects.toThrow(
      "wrong user name or password",
    );
    expect(auth.session).toBeNull();
    expect(sessionStorage.getItem("tollgate.session")).toBeNull();
  });

  it("is not valid once the token has expired, and logout forgets it", async () => {
    installFakeApi({
      "POST /api/v1/auth/login": () =>
        json(200, { token: "t", expires_at: 1000, role: "admin" }),
    });
    const auth = useAuthStore();

    await auth.login("a", "b");
    expect(auth.isValid(999_000)).toBe(true);
    expect(auth.isValid(1_000_000)).toBe(false);

    auth.logout("Your session has expired; log in again.");
    expect(auth.token).toBeNull();
    expect(auth.endedReason).toMatch(/expired/);
    expect(sessionStorage.getItem("tollgate.session")).toBeNull();
  });
});

describe("applications store", () => {
  it("pages on the server and searches by id prefix", async () => {
    const calls = installFakeApi({
      "GET /api/v1/apps": (c) => servedApps(c.query),
    });
    const apps = useAppsStore();

    await apps.setPage(3, 10);
    expect(calls.at(-1)!.query.get("offset")).toBe("20");
    expect(apps.items[0].app_id).toBe("app-020");
    expect(apps.total).toBe(1200);

    await apps.setFilters({ prefix: "app-11" });
    expect(apps.page).toBe(1);
    expect(calls.at(-1)!.query.get("prefix")).toBe("app-11");
    expect(apps.total).toBe(110); // app-110..119 and app-1100..1199
  });

  it("filters by priority over every page, then pages the result", async () => {
    const calls = installFakeApi({
      "GET /api/v1/apps": (c) => servedApps(c.query),
    });
    const apps = useAppsStore();
    apps.pageSize = 50;

    await apps.setFilters({ priority: 2 });

    expect(calls.map((c) => c.query.get("offset"))).toEqual([
      "0",
      "500",
      "1000",
    ]);
    expect(apps.total).toBe(400);
    expect(apps.items).toHaveLength(50);
    expect(apps.items.every((a) => a.priority === 2)).toBe(true);

    await apps.setPage(8);
    expect(apps.items.at(-1)!.app_id).toBe("app-1199");
  });

  it("removes a deleted application from the list", async () => {
    installFakeApi({
      "GET /api/v1/apps": (c) => servedApps(c.query),
      "DELETE /api/v1/apps/app-000": () => ({ status: 204 }),
    });
    const apps = useAppsStore();
    await apps.setPage(1, 10);

    await apps.remove("app-000");

    expect(apps.items.map((a) => a.app_id)).not.toContain("app-000");
    expect(apps.total).toBe(1199);
  });

  it("sends only the changed quota fields, and force when asked", async () => {
    const calls = installFakeApi({
      "PATCH /api/v1/apps/app-001/quota": (c) =>
        json(200, { ...makeApp(1), ...(c.body as object) }),
    });
    const apps = useAppsStore();
    apps.current = makeApp(1);

    await apps.changeQuota("app-001", { guaranteed_quota: 5 }, true);

    expect(calls[0].body).toEqual({ guaranteed_quota: 5 });
    expect(calls[0].query.get("force")).toBe("true");
    expect(apps.current.guaranteed_quota).toBe(5);
  });

  it("repays the whole debt when no count is given", async () => {
    const calls = installFakeApi({
      "POST /api/v1/apps/app-001/repay": () =>
        json(200, { app_id: "app-001", granted: 40, debt: 0 }),
    });
    const apps = useAppsStore();

    const result = await apps.repay("app-001");

    expect(calls[0].body).toEqual({});
    expect(result.debt).toBe(0);
  });
});

describe("events store", () => {
  it("sends its filters and pages", async () => {
    const calls = installFakeApi({
      "GET /api/v1/events": () =>
        json(200, { items: [], total: 0, limit: 25, offset: 0 }),
    });
    const events = useEventsStore();

    await events.setFilters({ appId: " app-001 ", type: "app.quota" });
    await events.setPage(2);

    const query = calls.at(-1)!.query;
    expect(query.get("app_id")).toBe("app-001");
    expect(query.get("type")).toBe("app.quota");
    expect(query.has("cluster_id")).toBe(false);
    expect(query.get("offset")).toBe("25");
  });
});

describe("clusters and gateways stores", () => {
  it("adds a created cluster to the list in id order", async () => {
    installFakeApi({
      "GET /api/v1/clusters": () =>
        json(200, {
          items: [{ cluster_id: "c2", capacity: 10, reserved_ratio: 0.1 }],
          total: 1,
        }),
      "PUT /api/v1/clusters/c1": (c) =>
        json(201, { cluster_id: "c1", ...(c.body as object) }),
    });
    const clusters = useClustersStore();
    await clusters.fetchAll();

    await clusters.save("c1", { capacity: 500, reserved_ratio: 0.2 });

    expect(clusters.items.map((c) => c.cluster_id)).toEqual(["c1", "c2"]);
  });

  it("names each gateway's state from its level and heartbeat", () => {
    expect(gatewayStatus({ alive: true, level: 0 })).toBe("healthy");
    expect(gatewayStatus({ alive: true, level: 2 })).toBe("degraded");
    expect(gatewayStatus({ alive: true, level: 3 })).toBe("fail-local");
    expect(gatewayStatus({ alive: false, level: 0 })).toBe("silent");
  });

  it("forgets an override given back with auto", async () => {
    installFakeApi({
      "GET /api/v1/gateways": () =>
        json(200, { items: [], degradation: { "gw-1": "3", "*": "1" } }),
      "PUT /api/v1/gateways/gw-1/degradation": () =>
        json(200, { gateway_id: "gw-1", level: "auto" }),
    });
    const gateways = useGatewaysStore();
    await gateways.fetchAll();
    expect(gateways.overrideOf("gw-1")).toBe("3");

    await gateways.force("gw-1", "auto");

    expect(gateways.overrideOf("gw-1")).toBe("1");
  });
});

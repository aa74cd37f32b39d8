// One function per admin API route (admin/openapi.yaml).

import { request } from "./http";
import type {
  App,
  AppCreate,
  Cluster,
  ClusterWrite,
  CostProfile,
  DegradationLevel,
  Emergency,
  EmergencyWrite,
  Event,
  EventQuery,
  GatewayList,
  History,
  HistoryMetric,
  LedgerResult,
  LedgerWrite,
  LoginResponse,
  Page,
  PageQuery,
  QuotaPatch,
  Realtime,
  User,
} from "./types";

const V1 = "/api/v1";

function id(value: string): string {
  return encodeURIComponent(value);
}

function force(yes: boolean | undefined): { force?: string } {
  return yes ? { force: "true" } : {};
}

export const api = {
  login(username: string, password: string): Promise<LoginResponse> {
    return request("POST", `${V1}/auth/login`, {
      body: { username, password },
      auth: false,
    });
  },

  me(): Promise<User> {
    return request("GET", `${V1}/auth/me`);
  },

  listClusters(query: PageQuery = {}): Promise<Page<Cluster>> {
    return request("GET", `${V1}/clusters`, { query: { ...query } });
  },

  getCluster(clusterId: string): Promise<Cluster> {
    return request("GET", `${V1}/clusters/${id(clusterId)}`);
  },

  putCluster(
    clusterId: string,
    body: ClusterWrite,
    forced?: boolean,
  ): Promise<Cluster> {
    return request("PUT", `${V1}/clusters/${id(clusterId)}`, {
      body,
      query: force(forced),
    });
  },

  setEmergency(clusterId: string, body: EmergencyWrite): Promise<Emergency> {
    return request("POST", `${V1}/clusters/${id(clusterId)}/emergency`, {
      body,
    });
  },

  listProfiles(): Promise<Page<CostProfile>> {
    return request("GET", `${V1}/profiles`, { query: { limit: 500 } });
  },

  listApps(
    query: PageQuery & { prefix?: string; cluster_id?: string } = {},
  ): Promise<Page<App>> {
    return request("GET", `${V1}/apps`, { query: { ...query } });
  },

  getApp(appId: string): Promise<App> {
    return request("GET", `${V1}/apps/${id(appId)}`);
  },

  createApp(body: AppCreate, forced?: boolean): Promise<App> {
    return request("POST", `${V1}/apps`, { body, query: force(forced) });
  },

  deleteApp(appId: string): Promise<void> {
    return request("DELETE", `${V1}/apps/${id(appId)}`);
  },

  patchQuota(appId: string, body: QuotaPatch, forced?: boolean): Promise<App> {
    return request("PATCH", `${V1}/apps/${id(appId)}/quota`, {
      body,
      query: force(forced),
    });
  },

  borrow(appId: string, body: LedgerWrite): Promise<LedgerResult> {
    return request("POST", `${V1}/apps/${id(appId)}/borrow`, { body });
  },

  repay(appId: string, body: LedgerWrite): Promise<LedgerResult> {
    return request("POST", `${V1}/apps/${id(appId)}/repay`, { body });
  },

  listGateways(clusterId?: string): Promise<GatewayList> {
    return request("GET", `${V1}/gateways`, {
      query: { cluster_id: clusterId },
    });
  },

  setDegradation(
    gatewayId: string,
    level: DegradationLevel,
    reason?: string,
  ): Promise<{ gateway_id: string; level: string }> {
    return request("PUT", `${V1}/gateways/${id(gatewayId)}/degradation`, {
      body: reason ? { level, reason } : { level },
    });
  },

  realtime(): Promise<Realtime> {
    return request("GET", `${V1}/metrics/realtime`);
  },

  history(
    metric: HistoryMetric,
    query: { cluster_id?: string; app_id?: string; step?: number } = {},
  ): Promise<History> {
    return request("GET", `${V1}/metrics/history`, {
      query: { metric, ...query },
    });
  },

  listEvents(query: EventQuery = {}): Promise<Page<Event>> {
    return request("GET", `${V1}/events`, { query: { ...query } });
  },
};

// The WebSocket URL carries the token: browsers cannot set headers on it.
export function liveUrl(token: string, origin = window.location): string {
  const scheme = origin.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${origin.host}${V1}/ws?token=${encodeURIComponent(token)}`;
}

// Shapes of the admin API, as admin/openapi.yaml defines them.

export type Role = "viewer" | "operator" | "admin";

export type ErrorCode =
  | "bad_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "unsupported_media_type"
  | "unavailable"
  | "internal";

export interface ErrorBody {
  error: ErrorCode | string;
  message: string;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export interface PageQuery {
  limit?: number;
  offset?: number;
}

export interface LoginResponse {
  token: string;
  expires_at: number;
  role?: Role;
}

export interface User {
  username: string;
  role: Role;
  created_at?: string;
}

export interface Emergency {
  active: boolean;
  mode?: "off" | "auto" | "manual";
  reason?: string;
  until_ms?: number; // Unix ms; 0 when off
  set_by?: string; // an operator or a gateway id
  hold_until_ms?: number; // after an operator's "off", the trigger waits
}

export interface Cluster {
  cluster_id: string;
  capacity: number;
  reserved_ratio: number;
  version?: number;
  guaranteed_total?: number;
  guaranteed_limit?: number; // floor(capacity * (1 - reserved_ratio))
  app_count?: number;
  emergency?: Emergency;
  created_at?: string;
  updated_at?: string;
}

export interface ClusterWrite {
  capacity: number;
  reserved_ratio?: number;
}

// "on": manual emergency for duration_s; "off": none, and the 95 % trigger
// held off for 5 minutes; "auto": the trigger decides again.
export type EmergencyAction = "on" | "off" | "auto";

export interface EmergencyWrite {
  action: EmergencyAction;
  reason?: string;
  duration_s?: number;
}

export interface CostProfile {
  name: string;
  base: number;
  bandwidth: number;
  quantum: number;
}

export type Priority = 0 | 1 | 2;

export interface App {
  app_id: string;
  cluster_id: string;
  guaranteed_quota: number;
  burst_quota: number;
  priority: Priority;
  max_borrow: number;
  cost_profile: string;
  version?: number;
  created_at?: string;
  updated_at?: string;
}

export interface AppCreate {
  app_id: string;
  cluster_id: string;
  guaranteed_quota: number;
  burst_quota: number;
  priority?: Priority;
  max_borrow?: number;
  cost_profile?: string;
}

export interface QuotaPatch {
  guaranteed_quota?: number;
  burst_quota?: number;
  max_borrow?: number;
  priority?: Priority;
}

export interface LedgerWrite {
  tokens?: number;
  reason?: string;
}

export interface LedgerResult {
  app_id: string;
  cluster_id?: string;
  tokens?: number; // asked for
  granted: number; // lent or repaid
  debt: number; // debt now, rounded up
}

export interface Gateway {
  gateway_id: string;
  cluster_id: string;
  last_heartbeat_ms: number;
  alive: boolean;
  level: number;
  hit_rate: number; // L3 hit rate, 0..1
  hit_rate_permille?: number;
  requests: number;
  rejected: number;
  version?: number;
  updated_ms?: number;
  forced_level?: string;
}

export interface GatewayList {
  items: Gateway[];
  degradation: Record<string, string>;
}

export type DegradationLevel = 0 | 1 | 2 | 3 | "auto";

// Balances are refilled to the snapshot's time; request counts exist per
// gateway and per cluster, not per application.
export interface RealtimeApp {
  app_id: string;
  tokens: number; // guaranteed balance
  burst_tokens?: number;
  debt?: number; // tokens, rounded up
  usage_pct: number; // of burst_quota
  granted_per_s?: number; // granted - returned
  used_per_s?: number; // reported used
}

export interface RealtimeCluster {
  cluster_id: string;
  capacity: number;
  tokens: number; // shared pool balance
  usage_pct: number; // tokens taken per second, % of capacity
  granted_per_s?: number;
  requests_per_s: number; // sum of the live gateways
  rejection_rate: number; // 0..1
  emergency?: Emergency;
  gateways: number;
  apps: RealtimeApp[];
}

export interface Realtime {
  ts_ms: number;
  clusters: RealtimeCluster[];
}

export type HistoryMetric =
  "requests_per_s" | "rejection_rate" | "usage_pct" | "tokens";

export interface HistorySeries {
  labels: Record<string, string>;
  points: [number, number][];
}

export interface History {
  source: "prometheus" | "memory";
  metric: string;
  series: HistorySeries[];
}

export interface Event {
  id: number;
  type: string;
  app_id: string | null;
  cluster_id: string | null;
  details?: {
    who?: string;
    what?: string;
    before?: unknown;
    after?: unknown;
  };
  created_at: string;
}

export interface EventQuery extends PageQuery {
  app_id?: string;
  cluster_id?: string;
  type?: string;
}

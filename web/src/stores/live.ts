import { defineStore } from "pinia";
import { computed, ref } from "vue";
import { api, liveUrl } from "../api";
import type {
  Emergency,
  HistoryMetric,
  Realtime,
  RealtimeApp,
} from "../api/types";
import { describeError } from "../lib/errors";

// Snapshots come over the WebSocket every second.  When it cannot be
// opened, or drops, the store polls the same document every 15 s and
// tries the socket again every 30 s.
export const POLL_MS = 15_000;
export const SOCKET_RETRY_MS = 30_000;
export const KEEP_MS = 3_600_000; // charts show the last hour

export type LiveMode = "off" | "connecting" | "live" | "polling";
export type Point = [number, number]; // [Unix ms, value]
export type SeriesByCluster = Record<string, Point[]>;

export interface TopApp extends RealtimeApp {
  cluster_id: string;
}

export function emergencyActive(
  emergency: Emergency | undefined,
  nowMs = Date.now(),
): boolean {
  if (!emergency?.active) {
    return false;
  }
  return emergency.until_ms === undefined || emergency.until_ms > nowMs;
}

export function clampRatio(value: number | undefined): number {
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value!)) : 0;
}

function appendPoint(
  series: SeriesByCluster,
  clusterId: string,
  point: Point,
): void {
  const points = series[clusterId] ?? (series[clusterId] = []);
  const last = points[points.length - 1];

  // Points arrive in time order; a repeat of the same second is dropped.
  if (last && last[0] >= point[0]) {
    return;
  }
  points.push(point);
  while (points.length > 0 && points[0][0] < point[0] - KEEP_MS) {
    points.shift();
  }
}

export const useLiveStore = defineStore("live", () => {
  const snapshot = ref<Realtime | null>(null);
  const mode = ref<LiveMode>("off");
  const error = ref<string | null>(null);
  const historyNote = ref<string | null>(null);
  const requestSeries = ref<SeriesByCluster>({});
  const rejectionSeries = ref<SeriesByCluster>({});

  let socket: WebSocket | null = null;
  let pollTimer: ReturnType<typeof setInterval> | null = null;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let token: string | null = null;

  const clusters = computed(() => snapshot.value?.clusters ?? []);

  const totalRequestsPerS = computed(() =>
    clusters.value.reduce((sum, c) => sum + (c.requests_per_s || 0), 0),
  );

  // Weighted by traffic, so a quiet cluster does not hide a busy one.  A
  // cluster's rate comes from two counters read a moment apart and can
  // stray outside 0..1 at low traffic; it is held to that range.
  const rejectionRate = computed(() => {
    const total = totalRequestsPerS.value;
    if (total <= 0) {
      return 0;
    }
    const rejected = clusters.value.reduce(
      (sum, c) => sum + (c.requests_per_s || 0) * clampRatio(c.rejection_rate),
      0,
    );
    return rejected / total;
  });

  const busiestCluster = computed(() =>
    clusters.value.reduce<(typeof clusters.value)[number] | null>(
      (best, c) => (!best || c.usage_pct > best.usage_pct ? c : best),
      null,
    ),
  );

  const apps = computed<TopApp[]>(() =>
    clusters.value.flatMap((c) =>
      (c.apps ?? []).map((a) => ({ ...a, cluster_id: c.cluster_id })),
    ),
  );

  const topApps = computed(() =>
    [...apps.value].sort((a, b) => b.usage_pct - a.usage_pct).slice(0, 10),
  );

  const emergencies = computed(() =>
    clusters.value.filter((c) => emergencyActive(c.emergency)),
  );

  function appLive(appId: string): TopApp | undefined {
    return apps.value.find((a) => a.app_id === appId);
  }

  function apply(next: Realtime): void {
    snapshot.value = next;
    for (const c of next.clusters ?? []) {
      appendPoint(requestSeries.value, c.cluster_id, [
        next.ts_ms,
        c.requests_per_s,
      ]);
      appendPoint(rejectionSeries.value, c.cluster_id, [
        next.ts_ms,
        c.rejection_rate,
      ]);
    }
  }

  // An operator's own change shows at once, before the next snapshot.
  function patchEmergency(clusterId: string, emergency: Emergency): void {
    const cluster = snapshot.value?.clusters.find(
      (c) => c.cluster_id === clusterId,
    );
    if (cluster) {
      cluster.emergency = emergency;
    }
  }

  async function poll(): Promise<void> {
    try {
      apply(await api.realtime());
      error.value = null;
    } catch (e) {
      error.value = describeError(e);
    }
  }

  function startPolling(): void {
    if (pollTimer !== null) {
      return;
    }
    void poll();
    pollTimer = setInterval(() => void poll(), POLL_MS);
  }

  function stopPolling(): void {
    if (pollTimer !== null) {
      clearInterval(pollTimer);
      pollTimer = null;
    }
  }

  function fallBack(): void {
    mode.value = "polling";
    startPolling();
    if (retryTimer === null) {
      retryTimer = setTimeout(() => {
        retryTimer = null;
        connect();
      }, SOCKET_RETRY_MS);
    }
  }

  function connect(): void {
    if (token === null || socket !== null) {
      return;
    }
    if (mode.value !== "polling") {
      mode.value = "connecting";
    }

    let ws: WebSocket;
    try {
      ws = new WebSocket(liveUrl(token));
    } catch {
      fallBack();
      return;
    }
    socket = ws;

    ws.onopen = () => {
      mode.value = "live";
      error.value = null;
      stopPolling();
    };
    ws.onmessage = (message: MessageEvent) => {
      try {
        const frame = JSON.parse(String(message.data));
        if (frame?.type === "snapshot" && frame.data) {
          apply(frame.data as Realtime);
        }
      } catch {
        error.value = "The live feed sent a frame that is not JSON.";
      }
    };
    ws.onclose = () => {
      if (socket !== ws) {
        return;
      }
      socket = null;
      if (token !== null) {
        fallBack();
      }
    };
  }

  function start(sessionToken: string): void {
    if (token === sessionToken && mode.value !== "off") {
      return;
    }
    stop();
    token = sessionToken;
    connect();
  }

  function stop(): void {
    token = null;
    stopPolling();
    if (retryTimer !== null) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    if (socket !== null) {
      const ws = socket;
      socket = null;
      ws.close();
    }
    mode.value = "off";
  }

  async function loadHistory(
    metric: HistoryMetric,
    into: SeriesByCluster,
  ): Promise<void> {
    const answer = await api.history(metric, { step: 15 });

    for (const s of answer.series ?? []) {
      const clusterId = s.labels.cluster_id ?? s.labels.cluster ?? "all";
      const live = into[clusterId] ?? [];
      const first = live.length > 0 ? live[0][0] : Infinity;
      const past = s.points
        .map(([sec, value]): Point => [sec * 1000, Number(value)])
        .filter(([ms]) => ms < first);
      into[clusterId] = [...past, ...live];
    }
  }

  // History seeds the charts; without it they start from the live feed.
  async function loadHistories(): Promise<void> {
    try {
      await loadHistory("requests_per_s", requestSeries.value);
      await loadHistory("rejection_rate", rejectionSeries.value);
      historyNote.value = null;
    } catch (e) {
      historyNote.value =
        "History is not available, so the charts start now. " +
        describeError(e);
    }
  }

  return {
    snapshot,
    mode,
    error,
    historyNote,
    requestSeries,
    rejectionSeries,
    clusters,
    totalRequestsPerS,
    rejectionRate,
    busiestCluster,
    apps,
    topApps,
    emergencies,
    appLive,
    apply,
    patchEmergency,
    poll,
    start,
    stop,
    loadHistories,
  };
});

import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPinia, setActivePinia } from "pinia";
import {
  POLL_MS,
  SOCKET_RETRY_MS,
  emergencyActive,
  useLiveStore,
} from "../src/stores/live";
import type { Realtime } from "../src/api/types";
import { installFakeApi, json } from "./fake-api";

// A WebSocket the test opens, feeds and closes by hand.
class FakeSocket {
  static made: FakeSocket[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((m: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  closed = false;

  constructor(readonly url: string) {
    FakeSocket.made.push(this);
  }
  close() {
    this.closed = true;
  }
  open() {
    this.onopen?.();
  }
  send(frame: unknown) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop() {
    this.onclose?.();
  }
}

function snapshot(tsMs: number, rps: number[], rejection: number[]): Realtime {
  return {
    ts_ms: tsMs,
    clusters: rps.map((r, i) => ({
      cluster_id: `c${i + 1}`,
      capacity: 1000,
      tokens: 0,
      usage_pct: 10 * (i + 1),
      requests_per_s: r,
      rejection_rate: rejection[i],
      gateways: 1,
      apps: [
        {
          app_id: `a${i + 1}`,
          tokens: 5,
          burst_tokens: 0,
          debt: 0,
          usage_pct: 30 + i * 40,
          granted_per_s: r,
          used_per_s: r,
        },
      ],
    })),
  };
}

let polls = 0;

beforeEach(() => {
  setActivePinia(createPinia());
  vi.useFakeTimers();
  FakeSocket.made = [];
  polls = 0;
  vi.stubGlobal("WebSocket", FakeSocket);
  installFakeApi({
    "GET /api/v1/metrics/realtime": () => {
      polls += 1;
      return json(200, snapshot(1000 * polls, [10], [0]));
    },
  });
});

afterEach(() => {
  useLiveStore().stop();
  vi.useRealTimers();
  vi.unstubAllGlobals();
});

describe("live feed", () => {
  it("opens the WebSocket with the token and applies snapshots", () => {
    const live = useLiveStore();
    live.start("jwt-9");
    const ws = FakeSocket.made[0];

    expect(ws.url).toMatch(/\/api\/v1\/ws\?token=jwt-9$/);
    ws.open();
    ws.send({ type: "snapshot", data: snapshot(5000, [100, 300], [0.1, 0.5]) });

    expect(live.mode).toBe("live");
    expect(live.totalRequestsPerS).toBe(400);
    // (100 × 0.1 + 300 × 0.5) / 400
    expect(live.rejectionRate).toBeCloseTo(0.4);
    expect(live.busiestCluster?.cluster_id).toBe("c2");
    expect(live.topApps.map((a) => a.app_id)).toEqual(["a2", "a1"]);
    expect(live.requestSeries.c2).toEqual([[5000, 300]]);
    expect(polls).toBe(0);
  });

  it("polls every 15 s while the socket is down and retries it every 30 s", async () => {
    const live = useLiveStore();
    live.start("jwt");
    FakeSocket.made[0].drop();

    expect(live.mode).toBe("polling");
    await vi.advanceTimersByTimeAsync(1);
    expect(polls).toBe(1);
    await vi.advanceTimersByTimeAsync(POLL_MS);
    expect(polls).toBe(2);

    await vi.advanceTimersByTimeAsync(SOCKET_RETRY_MS - POLL_MS);
    expect(FakeSocket.made).toHaveLength(2);

    FakeSocket.made[1].open();
    expect(live.mode).toBe("live");
    const before = polls;
    await vi.advanceTimersByTimeAsync(3 * POLL_MS);
    expect(polls).toBe(before);
  });

  it("stops everything on logout", async () => {
    const live = useLiveStore();
    live.start("jwt");
    FakeSocket.made[0].drop();
    await vi.advanceTimersByTimeAsync(1);

    live.stop();
    const before = polls;
    await vi.advanceTimersByTimeAsync(5 * SOCKET_RETRY_MS);

    expect(live.mode).toBe("off");
    expect(polls).toBe(before);
    expect(FakeSocket.made).toHaveLength(1);
  });

  it("shows an operator's emergency change before the next snapshot", () => {
    const live = useLiveStore();
    live.apply(snapshot(1000, [1], [0]));

    live.patchEmergency("c1", {
      active: true,
      mode: "manual",
      reason: "drill",
    });

    expect(live.emergencies.map((c) => c.cluster_id)).toEqual(["c1"]);
  });

  it("holds a cluster's rejection rate to 0..1", () => {
    const live = useLiveStore();
    live.apply(snapshot(1000, [1, 1], [5, -1]));

    expect(live.rejectionRate).toBe(0.5);
  });

  it("treats an emergency past its end as over", () => {
    expect(emergencyActive({ active: true, until_ms: 2000 }, 1999)).toBe(true);
    expect(emergencyActive({ active: true, until_ms: 2000 }, 2000)).toBe(false);
    expect(emergencyActive({ active: false }, 0)).toBe(false);
  });
});

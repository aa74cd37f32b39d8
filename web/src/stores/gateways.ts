import { defineStore } from "pinia";
import { ref } from "vue";
import { api } from "../api";
import type { DegradationLevel, Gateway } from "../api/types";

export type GatewayStatus = "healthy" | "degraded" | "fail-local" | "silent";

// Level 0 is healthy, 1 and 2 trade accuracy for fewer Redis calls, 3 has
// left Redis altogether; a gateway without a heartbeat for 10 s is silent.
export function gatewayStatus(
  gw: Pick<Gateway, "alive" | "level">,
): GatewayStatus {
  if (!gw.alive) {
    return "silent";
  }
  if (gw.level >= 3) {
    return "fail-local";
  }
  return gw.level > 0 ? "degraded" : "healthy";
}

export const useGatewaysStore = defineStore("gateways", () => {
  const items = ref<Gateway[]>([]);
  const overrides = ref<Record<string, string>>({});
  const loading = ref(false);
  const fetchedAt = ref<number | null>(null);

  async function fetchAll(): Promise<void> {
    loading.value = true;
    try {
      const answer = await api.listGateways();
      items.value = answer.items;
      overrides.value = answer.degradation ?? {};
      fetchedAt.value = Date.now();
    } finally {
      loading.value = false;
    }
  }

  // `*` forces every gateway; "auto" gives the choice back to them.
  async function force(
    gatewayId: string,
    level: DegradationLevel,
    reason?: string,
  ): Promise<void> {
    const answer = await api.setDegradation(gatewayId, level, reason);

    if (answer.level === "auto") {
      const next = { ...overrides.value };
      delete next[gatewayId];
      overrides.value = next;
    } else {
      overrides.value = { ...overrides.value, [gatewayId]: answer.level };
    }
  }

  function overrideOf(gatewayId: string): string {
    return overrides.value[gatewayId] ?? overrides.value["*"] ?? "auto";
  }

  return { items, overrides, loading, fetchedAt, fetchAll, force, overrideOf };
});

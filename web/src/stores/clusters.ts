import { defineStore } from "pinia";
import { ref } from "vue";
import { api } from "../api";
import type {
  Cluster,
  ClusterWrite,
  CostProfile,
  Emergency,
  EmergencyAction,
} from "../api/types";

export const useClustersStore = defineStore("clusters", () => {
  const items = ref<Cluster[]>([]);
  const profiles = ref<CostProfile[]>([]);
  const loading = ref(false);

  async function fetchAll(): Promise<void> {
    loading.value = true;
    try {
      const page = await api.listClusters({ limit: 500 });
      items.value = page.items;
    } finally {
      loading.value = false;
    }
  }

  async function fetchProfiles(): Promise<void> {
    profiles.value = (await api.listProfiles()).items;
  }

  function replace(cluster: Cluster): void {
    const at = items.value.findIndex(
      (c) => c.cluster_id === cluster.cluster_id,
    );

    if (at >= 0) {
      items.value.splice(at, 1, cluster);
    } else {
      items.value.push(cluster);
      items.value.sort((a, b) => a.cluster_id.localeCompare(b.cluster_id));
    }
  }

  async function save(
    clusterId: string,
    body: ClusterWrite,
    forced = false,
  ): Promise<Cluster> {
    const cluster = await api.putCluster(clusterId, body, forced);
    replace(cluster);
    return cluster;
  }

  async function setEmergency(
    clusterId: string,
    action: EmergencyAction,
    reason: string,
    durationS?: number,
  ): Promise<Emergency> {
    const emergency = await api.setEmergency(clusterId, {
      action,
      reason,
      duration_s: action === "on" ? durationS : undefined,
    });
    const cluster = items.value.find((c) => c.cluster_id === clusterId);

    if (cluster) {
      replace({ ...cluster, emergency });
    }
    return emergency;
  }

  return {
    items,
    profiles,
    loading,
    fetchAll,
    fetchProfiles,
    save,
    setEmergency,
  };
});

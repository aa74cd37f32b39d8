import { defineStore } from "pinia";
import { ref } from "vue";
import { api } from "../api";
import type { App, AppCreate, LedgerResult, QuotaPatch } from "../api/types";
import { usePagedList, type Slice } from "./paged";

// The API filters by id prefix and cluster but not by priority, so with a
// priority chosen the store reads every matching page (500 a call) and
// pages through the filtered list itself.
const PAGE_MAX = 500;

export interface AppFilters {
  prefix: string;
  clusterId: string;
  priority: number | null;
}

async function readAll(prefix?: string, clusterId?: string): Promise<App[]> {
  const all: App[] = [];
  let total = Infinity;

  while (all.length < total) {
    const page = await api.listApps({
      limit: PAGE_MAX,
      offset: all.length,
      prefix,
      cluster_id: clusterId,
    });
    total = page.total;
    all.push(...page.items);
    if (page.items.length === 0) {
      break;
    }
  }
  return all;
}

async function loadApps(
  filters: AppFilters,
  limit: number,
  offset: number,
): Promise<Slice<App>> {
  const prefix = filters.prefix || undefined;
  const clusterId = filters.clusterId || undefined;

  if (filters.priority === null) {
    return api.listApps({ limit, offset, prefix, cluster_id: clusterId });
  }

  const kept = (await readAll(prefix, clusterId)).filter(
    (app) => app.priority === filters.priority,
  );
  return { items: kept.slice(offset, offset + limit), total: kept.length };
}

export const useAppsStore = defineStore("apps", () => {
  const list = usePagedList<App, AppFilters>(
    { prefix: "", clusterId: "", priority: null },
    20,
    loadApps,
  );
  const current = ref<App | null>(null);
  const ledger = ref<LedgerResult | null>(null);

  async function load(appId: string): Promise<App> {
    current.value = await api.getApp(appId);
    return current.value;
  }

  function create(body: AppCreate, forced = false): Promise<App> {
    return api.createApp(body, forced);
  }

  async function changeQuota(
    appId: string,
    patch: QuotaPatch,
    forced = false,
  ): Promise<App> {
    const app = await api.patchQuota(appId, patch, forced);
    if (current.value?.app_id === appId) {
      current.value = app;
    }
    return app;
  }

  async function borrow(appId: string, tokens: number, reason?: string) {
    ledger.value = await api.borrow(appId, { tokens, reason });
    return ledger.value;
  }

  // Without a token count the whole debt is repaid.
  async function repay(appId: string, tokens?: number, reason?: string) {
    ledger.value = await api.repay(appId, { tokens, reason });
    return ledger.value;
  }

  async function remove(appId: string): Promise<void> {
    await api.deleteApp(appId);
    list.items.value = list.items.value.filter((app) => app.app_id !== appId);
    list.total.value = Math.max(0, list.total.value - 1);
    if (current.value?.app_id === appId) {
      current.value = null;
    }
  }

  return {
    ...list,
    current,
    ledger,
    load,
    create,
    changeQuota,
    borrow,
    repay,
    remove,
  };
});

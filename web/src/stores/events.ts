import { defineStore } from "pinia";
import { api } from "../api";
import type { Event } from "../api/types";
import { usePagedList } from "./paged";

export interface EventFilters {
  appId: string;
  clusterId: string;
  type: string;
}

export const useEventsStore = defineStore("events", () =>
  usePagedList<Event, EventFilters>(
    { appId: "", clusterId: "", type: "" },
    25,
    (filters, limit, offset) =>
      api.listEvents({
        limit,
        offset,
        app_id: filters.appId.trim() || undefined,
        cluster_id: filters.clusterId.trim() || undefined,
        type: filters.type.trim() || undefined,
      }),
  ),
);

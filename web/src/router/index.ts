import { createRouter, createWebHashHistory } from "vue-router";
import type { Router } from "vue-router";
import { useAuthStore } from "../stores/auth";

declare module "vue-router" {
  interface RouteMeta {
    public?: boolean;
    title?: string;
  }
}

// Hash history: the admin daemon serves the built files as they are and
// needs no fallback route for the dashboard's paths.
export function createAppRouter(): Router {
  const router = createRouter({
    history: createWebHashHistory(),
    routes: [
      {
        path: "/login",
        name: "login",
        component: () => import("../views/LoginView.vue"),
        meta: { public: true, title: "Log in" },
      },
      {
        path: "/",
        name: "overview",
        component: () => import("../views/OverviewView.vue"),
        meta: { title: "Overview" },
      },
      {
        path: "/apps",
        name: "apps",
        component: () => import("../views/AppsView.vue"),
        meta: { title: "Applications" },
      },
      {
        path: "/apps/new",
        name: "app-new",
        component: () => import("../views/AppCreateView.vue"),
        meta: { title: "New application" },
      },
      {
        path: "/apps/:id",
        name: "app",
        component: () => import("../views/AppDetailView.vue"),
        props: true,
        meta: { title: "Application" },
      },
      {
        path: "/clusters",
        name: "clusters",
        component: () => import("../views/ClustersView.vue"),
        meta: { title: "Clusters" },
      },
      {
        path: "/gateways",
        name: "gateways",
        component: () => import("../views/GatewaysView.vue"),
        meta: { title: "Gateways" },
      },
      {
        path: "/events",
        name: "events",
        component: () => import("../views/EventsView.vue"),
        meta: { title: "Events" },
      },
      { path: "/:rest(.*)*", redirect: "/" },
    ],
  });

  router.beforeEach((to) => {
    const auth = useAuthStore();

    if (to.meta.public) {
      return to.name === "login" && auth.isValid()
        ? { name: "overview" }
        : true;
    }
    if (!auth.isValid()) {
      if (auth.session) {
        auth.logout("Your session has expired; log in again.");
      }
      return { name: "login", query: { redirect: to.fullPath } };
    }
    return true;
  });

  router.afterEach((to) => {
    document.title = to.meta.title ? `${to.meta.title} · Tollgate` : "Tollgate";
  });

  return router;
}

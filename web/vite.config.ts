/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import vue from "@vitejs/plugin-vue";
import Components from "unplugin-vue-components/vite";
import { ElementPlusResolver } from "unplugin-vue-components/resolvers";

// The admin daemon the dev server forwards API calls to (`npm run dev`).
const adminUrl = process.env.TOLLGATE_ADMIN_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  plugins: [
    vue(),
    // Element Plus components and their styles are imported where a
    // template uses them, so the bundle carries only what the pages need.
    Components({
      resolvers: [ElementPlusResolver({ importStyle: "css" })],
      dts: false,
    }),
  ],
  build: {
    outDir: "dist",
    // ECharts (about 540 kB, loaded only once a chart is drawn) is the
    // largest chunk; Element Plus is split per component by the resolver.
    chunkSizeWarningLimit: 600,
  },
  server: {
    port: 3000,
    proxy: {
      "/api": { target: adminUrl, ws: true },
      "/healthz": adminUrl,
    },
  },
  test: {
    environment: "jsdom",
    include: ["tests/**/*.spec.ts"],
    restoreMocks: true,
    // Element Plus ships its styles as CSS imports, which only Vite's own
    // pipeline (not Node) can load.
    server: { deps: { inline: ["element-plus"] } },
  },
});

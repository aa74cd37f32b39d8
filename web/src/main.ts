import { createApp } from "vue";
import { createPinia } from "pinia";
import "element-plus/es/components/message/style/css";
import "element-plus/es/components/message-box/style/css";
import "./style.css";
import App from "./App.vue";
import { configureClient } from "./api/http";
import { notifyError } from "./lib/notify";
import { createAppRouter } from "./router";
import { useAuthStore } from "./stores/auth";

const app = createApp(App);
const pinia = createPinia();
const router = createAppRouter();

app.use(pinia);
app.use(router);

const auth = useAuthStore(pinia);

configureClient({
  token: () => auth.token,
  unauthorized: () => {
    if (auth.session === null) {
      return;
    }
    auth.logout("Your session has ended; log in again.");
    void router.push({
      name: "login",
      query: { redirect: router.currentRoute.value.fullPath },
    });
  },
});

// Any failure a page did not handle itself still reaches the operator in
// words; it is also logged, since it is a fault of the dashboard.
app.config.errorHandler = (error, _instance, info) => {
  console.error(`dashboard fault (${info}):`, error);
  notifyError(error);
};
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  console.error("dashboard fault (unhandled rejection):", event.reason);
  notifyError(event.reason);
});

app.mount("#app");

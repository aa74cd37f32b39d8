import { defineStore } from "pinia";
import { computed, ref } from "vue";
import { api } from "../api";
import type { Role } from "../api/types";

// The token lives for the browser tab's session only: closing the tab
// logs the operator out.
const STORAGE_KEY = "tollgate.session";

interface Session {
  token: string;
  username: string;
  role: Role;
  expiresAt: number; // Unix seconds
}

function loadSession(): Session | null {
  try {
    const text = sessionStorage.getItem(STORAGE_KEY);
    return text ? (JSON.parse(text) as Session) : null;
  } catch {
    return null;
  }
}

export const useAuthStore = defineStore("auth", () => {
  const session = ref<Session | null>(loadSession());
  const endedReason = ref<string | null>(null);

  const token = computed(() => session.value?.token ?? null);
  const username = computed(() => session.value?.username ?? "");
  const role = computed<Role | null>(() => session.value?.role ?? null);
  const canOperate = computed(
    () => role.value === "operator" || role.value === "admin",
  );
  const isAdmin = computed(() => role.value === "admin");

  function isValid(nowMs = Date.now()): boolean {
    return session.value !== null && session.value.expiresAt * 1000 > nowMs;
  }

  async function login(name: string, password: string): Promise<void> {
    const answer = await api.login(name, password);

    session.value = {
      token: answer.token,
      username: name,
      role: answer.role ?? "viewer",
      expiresAt: answer.expires_at,
    };
    endedReason.value = null;
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session.value));

    // An older daemon may leave the role out of the login answer.
    if (!answer.role) {
      const me = await api.me();
      session.value = { ...session.value, role: me.role };
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session.value));
    }
  }

  function logout(reason: string | null = null): void {
    session.value = null;
    endedReason.value = reason;
    sessionStorage.removeItem(STORAGE_KEY);
  }

  return {
    session,
    endedReason,
    token,
    username,
    role,
    canOperate,
    isAdmin,
    isValid,
    login,
    logout,
  };
});

import { ElMessage } from "element-plus/es/components/message/index.mjs";
import { ApiError } from "../api/http";
import { describeError } from "./errors";

// A 401 already sends the operator to the login page, which says why.
export function notifyError(error: unknown): void {
  if (error instanceof ApiError && error.status === 401) {
    return;
  }
  ElMessage({
    type: "error",
    message: describeError(error),
    duration: 6000,
    showClose: true,
  });
}

export function notifyDone(message: string): void {
  ElMessage({ type: "success", message, duration: 3000 });
}

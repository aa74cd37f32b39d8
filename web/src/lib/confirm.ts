import { ElMessageBox } from "element-plus/es/components/message-box/index.mjs";

// Resolves true when the operator confirms, false when they back out.
export async function confirmAction(
  title: string,
  message: string,
  confirmText = "Confirm",
  danger = false,
): Promise<boolean> {
  try {
    await ElMessageBox.confirm(message, title, {
      confirmButtonText: confirmText,
      cancelButtonText: "Cancel",
      type: danger ? "warning" : "info",
      confirmButtonClass: danger ? "el-button--danger" : undefined,
    });
    return true;
  } catch {
    return false;
  }
}

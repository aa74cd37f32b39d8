// Steps that more than one page takes, with the same words each time.
import { describeError, isConflict } from "./errors";
import { confirmAction } from "./confirm";
import { notifyDone, notifyError } from "./notify";

export async function confirmDeleteApp(
  appId: string,
  remove: (appId: string) => Promise<void>,
): Promise<boolean> {
  const sure = await confirmAction(
    "Delete application",
    `Delete ${appId}? Its gateways will answer its requests as from an ` +
      "unknown application.",
    "Delete",
    true,
  );

  if (!sure) {
    return false;
  }
  try {
    await remove(appId);
    notifyDone(`Application ${appId} deleted.`);
    return true;
  } catch (error) {
    notifyError(error);
    return false;
  }
}

// Runs a configuration change; when the API answers 409 the operator may
// repeat it with force=true, which overrides the guaranteed-capacity check
// (and only that one: a duplicate id stays refused).  Resolves true once a
// change is stored.
export async function saveWithForce(
  save: (forced: boolean) => Promise<unknown>,
  done: string,
): Promise<boolean> {
  try {
    await save(false);
    notifyDone(done);
    return true;
  } catch (error) {
    if (!isConflict(error)) {
      notifyError(error);
      return false;
    }
    const force = await confirmAction(
      "Conflict",
      `${describeError(error)}. If this is the cluster's guaranteed ` +
        "capacity, you may save anyway: guaranteed traffic may then " +
        "exceed what the cluster can serve.",
      "Save anyway (force)",
      true,
    );
    if (!force) {
      return false;
    }
    try {
      await save(true);
      notifyDone(`${done} (forced)`);
      return true;
    } catch (again) {
      notifyError(again);
      return false;
    }
  }
}

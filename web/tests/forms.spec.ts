import { afterEach, describe, expect, it, vi } from "vitest";
import { flushPromises, mount, type VueWrapper } from "@vue/test-utils";
import AppForm from "../src/components/AppForm.vue";
import QuotaEditor from "../src/components/QuotaEditor.vue";
import LedgerDialog from "../src/components/LedgerDialog.vue";
import EmergencyDialog from "../src/components/EmergencyDialog.vue";
import ClusterDialog from "../src/components/ClusterDialog.vue";
import type { App } from "../src/api/types";

const mounted: VueWrapper[] = [];

function track<T extends VueWrapper>(wrapper: T): T {
  mounted.push(wrapper);
  return wrapper;
}

afterEach(() => {
  while (mounted.length) mounted.pop()!.unmount();
  document.body.innerHTML = "";
});

// Element Plus puts the attribute on the native input of an el-input and
// on the wrapper of an el-input-number.
function fieldSelector(testId: string): string {
  const t = `[data-test="${testId}"]`;
  return `input${t}, textarea${t}, ${t} input`;
}

async function typeInto(wrapper: VueWrapper, testId: string, text: string) {
  const field = wrapper.find(fieldSelector(testId));
  await field.setValue(text);
  await field.trigger("change");
  await field.trigger("blur");
  await settle();
}

async function settle(): Promise<void> {
  await flushPromises();
  await new Promise((resolve) => setTimeout(resolve, 0));
  await flushPromises();
}

function errorsOf(wrapper: VueWrapper): string[] {
  return wrapper.findAll(".el-form-item__error").map((e) => e.text());
}

describe("application form", () => {
  function mountForm() {
    return track(
      mount(AppForm, {
        props: { clusters: ["cluster-01"], profiles: ["standard", "bulk"] },
        attachTo: document.body,
      }),
    );
  }

  it("refuses to submit an empty form and says what is missing", async () => {
    const form = mountForm();

    await form.find("form").trigger("submit");
    await settle();

    expect(form.emitted("submit")).toBeUndefined();
    await vi.waitFor(() =>
      expect(errorsOf(form)).toEqual(
        expect.arrayContaining([
          "Enter the application id.",
          "Enter the guaranteed quota.",
          "Enter the burst quota.",
        ]),
      ),
    );
  });

  it("refuses an id the API would refuse and a burst below guaranteed", async () => {
    const form = mountForm();

    await typeInto(form, "app-id", "bad id!");
    await typeInto(form, "app-guaranteed", "100");
    await typeInto(form, "app-burst", "50");
    await form.find("form").trigger("submit");
    await settle();

    expect(form.emitted("submit")).toBeUndefined();
    await vi.waitFor(() =>
      expect(errorsOf(form)).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/only letters, digits/),
          "The burst quota must be at least the guaranteed quota.",
        ]),
      ),
    );
  });

  it("emits the API's body for a valid application", async () => {
    const form = mountForm();

    await typeInto(form, "app-id", "photos-api");
    await typeInto(form, "app-guaranteed", "100");
    await typeInto(form, "app-burst", "250");
    await form.find("form").trigger("submit");
    await settle();

    expect(errorsOf(form)).toEqual([]);
    expect(form.emitted("submit")![0][0]).toEqual({
      app_id: "photos-api",
      cluster_id: "cluster-01",
      guaranteed_quota: 100,
      burst_quota: 250,
      priority: 2,
      max_borrow: 0,
      cost_profile: "standard",
    });
  });
});

describe("quota editor", () => {
  const app: App = {
    app_id: "photos-api",
    cluster_id: "cluster-01",
    guaranteed_quota: 100,
    burst_quota: 200,
    priority: 1,
    max_borrow: 50,
    cost_profile: "standard",
  };

  function mountEditor() {
    return track(mount(QuotaEditor, { props: { app, maxTokens: 1000 } }));
  }

  function applyButton(editor: VueWrapper) {
    return editor.find('[data-test="quota-apply"]');
  }

  it("has nothing to apply until a value changes", () => {
    const editor = mountEditor();
    expect(applyButton(editor).attributes("disabled")).toBeDefined();
  });

  it("applies only the fields that changed", async () => {
    const editor = mountEditor();

    await typeInto(editor, "quota-burst_quota", "400");
    await applyButton(editor).trigger("click");

    expect(editor.emitted("apply")![0][0]).toEqual({ burst_quota: 400 });
  });

  it("will not apply a guaranteed quota above the burst quota", async () => {
    const editor = mountEditor();

    await typeInto(editor, "quota-guaranteed_quota", "300");

    expect(editor.text()).toContain(
      "The burst quota must be at least the guaranteed quota.",
    );
    expect(applyButton(editor).attributes("disabled")).toBeDefined();
    await applyButton(editor).trigger("click");
    expect(editor.emitted("apply")).toBeUndefined();
  });
});

describe("dialogs", () => {
  function body(): string {
    return document.body.textContent ?? "";
  }

  function button(testId: string): HTMLButtonElement {
    return document.querySelector(`[data-test="${testId}"]`)!;
  }

  async function typeInDocument(testId: string, text: string) {
    const input = document.querySelector<HTMLInputElement>(
      fieldSelector(testId),
    )!;
    input.value = text;
    input.dispatchEvent(new Event("input"));
    input.dispatchEvent(new Event("change"));
    input.dispatchEvent(new Event("blur"));
    await flushPromises();
  }

  it("borrowing needs a count within the application's limit", async () => {
    const dialog = track(
      mount(LedgerDialog, {
        props: { modelValue: true, mode: "borrow", appId: "a", maxBorrow: 100 },
        attachTo: document.body,
      }),
    );
    await flushPromises();

    expect(button("ledger-submit").disabled).toBe(true);
    await typeInDocument("ledger-tokens", "150");
    // The input clamps nothing above max here: the check says why.
    expect(body()).toContain("at most 100");

    await typeInDocument("ledger-tokens", "60");
    button("ledger-submit").click();
    await flushPromises();
    expect(dialog.emitted("submit")![0][0]).toEqual({ tokens: 60 });
  });

  it("a borrowing limit of 0 is explained, not submitted", async () => {
    track(
      mount(LedgerDialog, {
        props: { modelValue: true, mode: "borrow", appId: "a", maxBorrow: 0 },
        attachTo: document.body,
      }),
    );
    await flushPromises();

    expect(body()).toContain("may not borrow");
    expect(button("ledger-submit").disabled).toBe(true);
  });

  it("repaying without a count repays the whole debt", async () => {
    const dialog = track(
      mount(LedgerDialog, {
        props: { modelValue: true, mode: "repay", appId: "a", maxBorrow: 0 },
        attachTo: document.body,
      }),
    );
    await flushPromises();

    button("ledger-submit").click();
    await flushPromises();

    expect(dialog.emitted("submit")![0][0]).toEqual({});
  });

  it("emergency mode needs a reason", async () => {
    const dialog = track(
      mount(EmergencyDialog, {
        props: { modelValue: true, clusterId: "cluster-01", enable: true },
        attachTo: document.body,
      }),
    );
    await flushPromises();

    button("emergency-submit").click();
    await flushPromises();
    expect(dialog.emitted("submit")).toBeUndefined();
    expect(body()).toContain("Give a reason");

    await typeInDocument("emergency-reason", "cluster at 96 %");
    button("emergency-submit").click();
    await flushPromises();
    expect(dialog.emitted("submit")![0]).toEqual([
      "on",
      "cluster at 96 %",
      300,
    ]);
  });

  it("ending emergency mode may give the choice back to the trigger", async () => {
    const dialog = track(
      mount(EmergencyDialog, {
        props: { modelValue: false, clusterId: "cluster-01", enable: false },
        attachTo: document.body,
      }),
    );
    await dialog.setProps({ modelValue: true });
    await flushPromises();

    document
      .querySelector<HTMLInputElement>('[data-test="emergency-auto"] input')!
      .click();
    await typeInDocument("emergency-reason", "drill over");
    button("emergency-submit").click();
    await flushPromises();

    expect(dialog.emitted("submit")![0].slice(0, 2)).toEqual([
      "auto",
      "drill over",
    ]);
  });

  it("a new cluster needs a valid id and a capacity of at least 1", async () => {
    const dialog = track(
      mount(ClusterDialog, {
        props: { modelValue: false, cluster: null },
        attachTo: document.body,
      }),
    );
    await dialog.setProps({ modelValue: true });
    await flushPromises();

    expect(button("cluster-save").disabled).toBe(true);
    expect(body()).toContain("Enter the cluster id.");

    await typeInDocument("cluster-id", "cluster-02");
    await typeInDocument("cluster-capacity", "5000");
    button("cluster-save").click();
    await flushPromises();

    expect(dialog.emitted("save")![0]).toEqual([
      "cluster-02",
      { capacity: 5000, reserved_ratio: 0.1 },
    ]);
  });
});

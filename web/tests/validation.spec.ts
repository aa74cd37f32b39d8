import { describe, expect, it } from "vitest";
import { describeChange } from "../src/lib/changes";
import {
  MAX_TOKENS,
  checkApp,
  checkBurst,
  checkId,
  checkReason,
  checkTokens,
  type AppDraft,
} from "../src/lib/validation";

const good: AppDraft = {
  app_id: "photos-api",
  cluster_id: "cluster-01",
  guaranteed_quota: 100,
  burst_quota: 200,
  priority: 1,
  max_borrow: 0,
  cost_profile: "standard",
};

describe("application checks mirror the API", () => {
  it("accepts a valid application", () => {
    expect(checkApp(good)).toEqual({});
  });

  it.each(["", "has space", "semi;colon", "x".repeat(65), "ünï"])(
    "refuses the id %j",
    (id) => {
      expect(checkApp({ ...good, app_id: id }).app_id).toBeTruthy();
    },
  );

  it("accepts ids of 64 characters with dots, dashes and underscores", () => {
    expect(checkId(`a._-${"b".repeat(60)}`, "id")).toBeNull();
  });

  it("refuses a burst quota below the guaranteed quota", () => {
    expect(checkApp({ ...good, burst_quota: 99 }).burst_quota).toMatch(
      /at least the guaranteed/,
    );
    expect(checkBurst(100, 100)).toBeNull();
  });

  it("refuses negative, fractional, missing and huge quotas", () => {
    expect(checkTokens(-1, "q")).toMatch(/at least 0/);
    expect(checkTokens(1.5, "q")).toMatch(/whole number/);
    expect(checkTokens(null, "q")).toMatch(/Enter/);
    expect(checkTokens(MAX_TOKENS + 1, "q")).toMatch(/at most/);
    expect(checkTokens(MAX_TOKENS, "q")).toBeNull();
  });

  it("refuses a priority outside 0..2", () => {
    expect(checkApp({ ...good, priority: 3 }).priority).toBeTruthy();
  });

  it("requires a reason when asked, and bounds its length", () => {
    expect(checkReason("  ", true)).toMatch(/reason/);
    expect(checkReason("", false)).toBeNull();
    expect(checkReason("r".repeat(257), false)).toMatch(/256/);
  });
});

describe("event change summary", () => {
  it("lists only the fields that changed, without bookkeeping", () => {
    expect(
      describeChange(
        { app_id: "a", guaranteed_quota: 4, burst_quota: 4, version: 3 },
        { app_id: "a", guaranteed_quota: 1000, burst_quota: 4, version: 4 },
      ),
    ).toBe("guaranteed_quota 4 → 1000");
  });

  it("lists a created object's fields, and a deleted one's as it was", () => {
    expect(
      describeChange(null, { app_id: "a", priority: 2, created_at: "t" }),
    ).toBe("app_id=a, priority=2");
    expect(describeChange({ app_id: "a" }, null)).toBe("was app_id=a");
  });

  it("shows plain values as they are", () => {
    expect(describeChange(undefined, "on")).toBe("on");
    expect(describeChange(undefined, undefined)).toBe("");
  });
});

import { describe, expect, it } from "vitest";
import { healthScore } from "../src/lib/health";

const calm = {
  rejectionRate: 0,
  busiestUsagePct: 40,
  gateways: [{ alive: true, level: 0 }],
  emergency: false,
};

describe("health score", () => {
  it("is 100 when nothing is wrong", () => {
    const health = healthScore(calm);
    expect(health.score).toBe(100);
    expect(health.grade).toBe("good");
    expect(health.terms.every((t) => t.penalty === 0)).toBe(true);
  });

  it("loses rejection points in proportion, up to 40 at 20 %", () => {
    expect(healthScore({ ...calm, rejectionRate: 0.05 }).score).toBe(90);
    expect(healthScore({ ...calm, rejectionRate: 0.5 }).score).toBe(60);
  });

  it("loses pressure points from 70 % to 95 % of capacity", () => {
    expect(healthScore({ ...calm, busiestUsagePct: 70 }).score).toBe(100);
    expect(healthScore({ ...calm, busiestUsagePct: 82.5 }).score).toBe(85);
    expect(healthScore({ ...calm, busiestUsagePct: 99 }).score).toBe(70);
  });

  it("counts a silent gateway as fully degraded", () => {
    const gateways = [
      { alive: true, level: 0 },
      { alive: false, level: 0 },
    ];
    const health = healthScore({ ...calm, gateways });
    expect(health.score).toBe(90);
    expect(health.terms[2].detail).toBe("1 of 2 gateways degraded or silent");
  });

  it("adds every penalty and never goes below 0", () => {
    const worst = healthScore({
      rejectionRate: 1,
      busiestUsagePct: 100,
      gateways: [{ alive: true, level: 3 }],
      emergency: true,
    });
    expect(worst.score).toBe(0);
    expect(worst.grade).toBe("poor");
  });
});

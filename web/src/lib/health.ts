// The health score on the overview page: 100 less four penalties, each
// shown to the operator with its reason, so a low score explains itself.

export interface HealthInput {
  rejectionRate: number; // 0..1, over every cluster
  busiestUsagePct: number; // 0..100, the fullest cluster
  gateways: { alive: boolean; level: number }[];
  emergency: boolean;
}

export interface HealthTerm {
  label: string;
  penalty: number;
  max: number;
  rule: string;
  detail: string;
}

export interface Health {
  score: number;
  grade: "good" | "fair" | "poor";
  terms: HealthTerm[];
}

export const REJECTION_POINTS = 40;
export const REJECTION_FULL = 0.2;
export const PRESSURE_POINTS = 30;
export const PRESSURE_FROM_PCT = 70;
export const PRESSURE_FULL_PCT = 95;
export const GATEWAY_POINTS = 20;
export const EMERGENCY_POINTS = 10;

function clamp01(value: number): number {
  if (!Number.isFinite(value)) {
    return 0;
  }
  return Math.min(1, Math.max(0, value));
}

function round1(value: number): number {
  return Math.round(value * 10) / 10;
}

// A silent gateway weighs as much as one in fail-local: neither is
// deciding with the shared quota.
function gatewayStrain(gateways: HealthInput["gateways"]): number {
  if (gateways.length === 0) {
    return 0;
  }

  let sum = 0;
  for (const gw of gateways) {
    sum += gw.alive ? clamp01(gw.level / 3) : 1;
  }
  return sum / gateways.length;
}

export function healthScore(input: HealthInput): Health {
  const rejected = clamp01(input.rejectionRate / REJECTION_FULL);
  const pressure = clamp01(
    (input.busiestUsagePct - PRESSURE_FROM_PCT) /
      (PRESSURE_FULL_PCT - PRESSURE_FROM_PCT),
  );
  const strain = gatewayStrain(input.gateways);
  const strained = input.gateways.filter((g) => !g.alive || g.level > 0);
  const terms: HealthTerm[] = [
    {
      label: "Rejections",
      penalty: round1(REJECTION_POINTS * rejected),
      max: REJECTION_POINTS,
      rule: `${REJECTION_POINTS} points when ${REJECTION_FULL * 100} % or more of requests are rejected, in proportion below`,
      detail: `${round1(clamp01(input.rejectionRate) * 100)} % of requests rejected`,
    },
    {
      label: "Cluster pressure",
      penalty: round1(PRESSURE_POINTS * pressure),
      max: PRESSURE_POINTS,
      rule: `0 below ${PRESSURE_FROM_PCT} % of capacity, rising to ${PRESSURE_POINTS} points at ${PRESSURE_FULL_PCT} % (where emergency mode starts)`,
      detail: `busiest cluster at ${round1(input.busiestUsagePct)} % of capacity`,
    },
    {
      label: "Gateways",
      penalty: round1(GATEWAY_POINTS * strain),
      max: GATEWAY_POINTS,
      rule: `${GATEWAY_POINTS} points × the mean of level ÷ 3 over gateways (a silent gateway counts as 1)`,
      detail: `${strained.length} of ${input.gateways.length} gateways degraded or silent`,
    },
    {
      label: "Emergency",
      penalty: input.emergency ? EMERGENCY_POINTS : 0,
      max: EMERGENCY_POINTS,
      rule: `${EMERGENCY_POINTS} points while any cluster is in emergency mode`,
      detail: input.emergency ? "emergency mode on" : "no emergency",
    },
  ];
  const lost = terms.reduce((sum, term) => sum + term.penalty, 0);
  const score = Math.max(0, Math.round(100 - lost));

  return {
    score,
    grade: score >= 80 ? "good" : score >= 50 ? "fair" : "poor",
    terms,
  };
}

// End-to-end tests of the dashboard: Debian's Chromium, driven headless by
// playwright-core, against a real stack (PostgreSQL, Redis, tollgate-admin
// serving web/dist, one nginx gateway).  Every page is saved as a
// screenshot under e2e/screenshots/<run name>/.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import {
  ADMIN_BIN,
  ADMIN_PASSWORD,
  ADMIN_USER,
  ROOT,
  Stack,
} from "./stack.mjs";

const DIST = path.join(ROOT, "web/dist");
const CHROMIUM = process.env.TOLLGATE_CHROMIUM ?? "/usr/bin/chromium";
const RUN_NAME =
  process.env.TOLLGATE_E2E_RUN ??
  new Date().toISOString().replace(/[:.]/g, "-");
const SHOTS = path.join(ROOT, "web/e2e/screenshots", RUN_NAME);
const CLUSTER = "cluster-e2e";
const APP = "e2e-photos";
const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

const stack = new Stack();
let browser;
let page;
let shotCount = 0;
const consoleErrors = [];
// Steps that provoke an HTTP error on purpose (a wrong password, a
// forged token) allow Chromium's "Failed to load resource" lines.
let allowHttpErrors = false;
const timings = {};

// Pictures wait out Element Plus's fade-ins (300 ms) first.
async function shot(name) {
  await page.waitForTimeout(400);
  shotCount += 1;
  const file = path.join(
    SHOTS,
    `${String(shotCount).padStart(2, "0")}-${name}.png`,
  );
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

function testId(id) {
  return page.locator(`[data-test="${id}"]`);
}

// Element Plus puts data-test on the native input of an el-input and on
// the wrapper of an el-input-number.
function field(id) {
  return page
    .locator(
      `input[data-test="${id}"], textarea[data-test="${id}"], [data-test="${id}"] input`,
    )
    .first();
}

async function fillNumber(id, value) {
  await field(id).fill(String(value));
  await field(id).press("Tab");
}

async function go(hashPath) {
  await page.goto(`${stack.base}/#${hashPath}`);
}

async function confirmBox(button) {
  const box = page.locator(".el-message-box");
  await box.waitFor();
  await box.getByRole("button", { name: button, exact: true }).click();
  await box.waitFor({ state: "hidden" });
}

async function api(method, route, body) {
  const login = await fetch(`${stack.base}/api/v1/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: ADMIN_USER, password: ADMIN_PASSWORD }),
  });
  const { token } = await login.json();
  const answer = await fetch(`${stack.base}${route}`, {
    method,
    headers: {
      "Content-Type": "application/json",
      Authorization: `Bearer ${token}`,
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.ok(
    answer.ok,
    `${method} ${route}: ${answer.status} ${await answer.text()}`,
  );
}

// The level the gateway runs at, once it is `expected` or after 10 s.
async function gatewayLevel(expected) {
  let level;
  for (let i = 0; i < 40 && level !== expected; i++) {
    await new Promise((r) => setTimeout(r, 250));
    level = (await stack.gatewayStatus()).degradation_level;
  }
  return level;
}

function count(codes, status) {
  return codes.filter((c) => c === status).length;
}

describe("dashboard against the real stack", { concurrency: false }, () => {
  before(async () => {
    assert.ok(
      fs.existsSync(path.join(DIST, "index.html")),
      "web/dist is not built: run `make web`",
    );
    assert.ok(
      fs.existsSync(ADMIN_BIN),
      `${ADMIN_BIN} is not built: run \`make admin\``,
    );
    fs.mkdirSync(SHOTS, { recursive: true });

    await stack.startPostgres();
    await stack.startRedis();
    await stack.startAdmin(DIST);
    await stack.startGateway("gw-e2e", CLUSTER);

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
      ],
    });
    const context = await browser.newContext({ viewport: DESKTOP });
    page = await context.newPage();
    page.setDefaultTimeout(15_000);
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      if (allowHttpErrors && /Failed to load resource/.test(message.text()))
        return;
      consoleErrors.push(
        `${message.text()} ${JSON.stringify(message.location())}`,
      );
    });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));
  });

  after(async () => {
    await browser?.close();
    fs.writeFileSync(
      path.join(SHOTS, "timings.json"),
      JSON.stringify(timings, null, 2),
    );
    await stack.stop();
  });

  it("loads the login page (timing recorded in timings.json)", async () => {
    const started = Date.now();
    await page.goto(`${stack.base}/`);
    await testId("login-submit").waitFor();
    timings.login_page_ms = Date.now() - started;

    const nav = await page.evaluate(() => {
      const entry = performance.getEntriesByType("navigation")[0];
      return {
        dom_content_loaded_ms: entry.domContentLoadedEventEnd,
        load_ms: entry.loadEventEnd,
      };
    });
    Object.assign(timings, nav);
    console.log(`# login page usable after ${timings.login_page_ms} ms`);
    await shot("login");
  });

  it("refuses a wrong password in words", async () => {
    allowHttpErrors = true;
    await field("username").fill(ADMIN_USER);
    await field("password").fill("not the password");
    await testId("login-submit").click();
    await assert.doesNotReject(testId("login-error").waitFor());
    assert.match(
      await testId("login-error").innerText(),
      /user name or password is wrong/,
    );
    allowHttpErrors = false;
    await shot("login-refused");
  });

  it("logs in and shows the overview with its health score", async () => {
    const started = Date.now();
    await field("password").fill(ADMIN_PASSWORD);
    await testId("login-submit").click();
    await testId("health-score").waitFor();
    timings.login_to_overview_ms = Date.now() - started;

    assert.match(await testId("health-score").innerText(), /^\d+\s*\/100$/);
    await page.getByRole("button", { name: "How it is computed" }).click();
    await testId("health-rule").waitFor();
    assert.match(await testId("health-rule").innerText(), /Rejections/);
    await shot("overview");

    // A fresh load of the overview with the session already open.
    const reload = Date.now();
    await page.reload();
    await testId("health-score").waitFor();
    timings.overview_reload_ms = Date.now() - reload;
    console.log(
      `# overview usable ${timings.overview_reload_ms} ms after a reload`,
    );
  });

  it("creates a storage cluster", async () => {
    await testId("nav-clusters").click();
    await testId("new-cluster").click();
    await field("cluster-id").fill(CLUSTER);
    await fillNumber("cluster-capacity", 100000);
    await testId("cluster-save").click();
    await testId(`cluster-${CLUSTER}`).waitFor();
    assert.match(
      await testId(`cluster-${CLUSTER}`).innerText(),
      /100,000 tokens\/s/,
    );
    await shot("clusters");
  });

  it("refuses an invalid application form, then creates the application", async () => {
    await testId("nav-applications").click();
    await testId("new-app").click();
    await field("app-id").fill("bad id!");
    await fillNumber("app-guaranteed", 10);
    await fillNumber("app-burst", 5);
    await testId("app-submit").click();
    await page
      .getByText("The burst quota must be at least the guaranteed quota.")
      .waitFor();
    await page.getByText(/may use only letters, digits/).waitFor();
    await shot("app-form-invalid");

    await field("app-id").fill(APP);
    await fillNumber("app-guaranteed", 4);
    await fillNumber("app-burst", 4);
    await testId("app-priority").click();
    await page
      .locator(".el-select-dropdown__item", { hasText: "P2 (lowest)" })
      .click();
    await testId("app-submit").click();
    await page.waitForURL(new RegExp(`#/apps/${APP}$`));
    await testId("fact-guaranteed").waitFor();
    assert.equal(await testId("fact-guaranteed").innerText(), "4 tokens/s");
  });

  it("finds the application in the list by searching its id", async () => {
    await testId("nav-applications").click();
    await field("app-search").fill("e2e-");
    await testId(`app-link-${APP}`).waitFor();
    await field("app-search").fill("nothing-like-it");
    await testId(`app-link-${APP}`).waitFor({ state: "detached" });
    await field("app-search").fill("");
    await testId(`app-link-${APP}`).waitFor();
    await shot("apps-list");
  });

  it("raises its quota after a confirmation, and the gateway admits the new rate", async () => {
    const before = await stack.hitGateway(APP, 40);
    assert.ok(
      count(before, 429) >= 30,
      `at 4 tokens/s most of 40 GETs are refused: ${before}`,
    );

    await testId(`app-link-${APP}`).click();
    await fillNumber("quota-guaranteed_quota", 1000);
    await fillNumber("quota-burst_quota", 1000);
    await testId("quota-apply").click();
    await page.locator(".el-message-box").waitFor();
    assert.match(
      await page.locator(".el-message-box").innerText(),
      /guaranteed quota 4 → 1000/,
    );
    await shot("quota-confirm");
    await confirmBox("Apply");
    await page.getByText("Quota changed.").waitFor();
    assert.equal(await testId("fact-guaranteed").innerText(), "1,000 tokens/s");
    await shot("app-detail");

    // Gateways pick a change up within a second.
    await new Promise((r) => setTimeout(r, 1500));
    const afterChange = await stack.hitGateway(APP, 40);
    assert.equal(
      count(afterChange, 200),
      40,
      `at 1000 tokens/s 40 GETs pass: ${afterChange}`,
    );
  });

  it("borrows through the dialog once the application may borrow", async () => {
    await testId("borrow").click();
    await page.locator('.el-dialog [data-test="problem"]').waitFor();
    assert.match(
      await page.locator('.el-dialog [data-test="problem"]').innerText(),
      /may not borrow/,
    );
    await page.keyboard.press("Escape");

    await fillNumber("quota-max_borrow", 100);
    await testId("quota-apply").click();
    await confirmBox("Apply");
    await page.getByText("Quota changed.").waitFor();

    await testId("borrow").click();
    await fillNumber("ledger-tokens", 10);
    await field("ledger-reason").fill("e2e: batch job");
    await shot("borrow");
    await testId("ledger-submit").click();
    // The answer, or the error in words, whichever the page shows.
    const said = page
      .locator(".el-message--success, .el-message--error")
      .filter({ hasNotText: "Quota changed." });
    await said.waitFor();
    assert.match(
      await said.innerText(),
      /^Borrowed: \d+ tokens; debt now \d+\.$/,
    );

    await testId("repay").click();
    await testId("ledger-submit").click();
    await page.getByText(/^Repaid: \d+ tokens; debt now 0\.$/).waitFor();
  });

  it("turns emergency mode on with a reason, shows the banner, and the gateway rejects P2", async () => {
    await testId("nav-clusters").click();
    await testId(`emergency-${CLUSTER}`).click();
    await testId("emergency-submit").click();
    await page
      .getByText("Give a reason: it is recorded in the event log.")
      .waitFor();

    await field("emergency-reason").fill("e2e drill: cluster at 96 %");
    await testId("emergency-submit").click();
    await testId("emergency-banner").waitFor();
    assert.match(
      await testId("emergency-banner").innerText(),
      /cluster-e2e.*e2e drill/s,
    );
    await shot("emergency");

    let codes = [];
    for (let i = 0; i < 30 && count(codes, 429) < 5; i++) {
      await new Promise((r) => setTimeout(r, 200));
      codes = await stack.hitGateway(APP, 5);
    }
    assert.equal(count(codes, 429), 5, `P2 is rejected in emergency: ${codes}`);

    await go("/");
    await testId("emergency-state").waitFor();
    assert.equal((await testId("emergency-state").innerText()).trim(), "On");
    await shot("overview-emergency");

    await go("/clusters");
    await testId(`emergency-${CLUSTER}`).click();
    await field("emergency-reason").fill("drill over");
    await testId("emergency-submit").click();
    await testId("emergency-banner").waitFor({ state: "detached" });
  });

  it("shows the gateway in the grid, colour-coded by its state", async () => {
    await testId("nav-gateways").click();
    const card = testId("gateway-gw-e2e");
    await card.waitFor();
    assert.match(
      await card.locator('[data-test="gw-status"]').innerText(),
      /Healthy/,
    );
    await shot("gateways");
  });

  it("forces a degradation level on the gateway, which applies it, then releases it", async () => {
    const override = testId("gw-level-gw-e2e");

    await override.click();
    await page
      .locator(".el-select-dropdown__item:visible", { hasText: "1 conserve" })
      .click();
    await confirmBox("Apply");
    await page
      .getByText("Degradation for gateway gw-e2e: 1 conserve.")
      .waitFor();
    await page.getByRole("button", { name: "Refresh", exact: true }).click();
    await page.waitForTimeout(300);
    assert.match(await override.innerText(), /1 conserve/);
    await shot("gateway-forced");

    // The gateway reads overrides at its next sync.
    assert.equal(
      await gatewayLevel(1),
      1,
      "the gateway runs at the forced level",
    );

    await override.click();
    await page
      .locator(".el-select-dropdown__item:visible", { hasText: "Automatic" })
      .click();
    await confirmBox("Apply");
    await page
      .getByText("Degradation for gateway gw-e2e: Automatic.")
      .waitFor();
    // Released, the gateway steps down by itself after its healthy hold
    // period; what is checked here is that the override is gone.
    await page.getByRole("button", { name: "Refresh", exact: true }).click();
    await page.waitForTimeout(300);
    assert.match(await override.innerText(), /Automatic/);
  });

  it("lists the changes in the event log, filtered by application", async () => {
    await testId("nav-events").click();
    await page
      .locator('[data-test="events-table"] .el-table__row')
      .first()
      .waitFor();
    await field("ev-app").fill(APP);
    await testId("ev-apply").click();
    await page.waitForTimeout(300);
    const rows = await page
      .locator('[data-test="events-table"] .el-table__row')
      .allInnerTexts();
    assert.ok(rows.length >= 2, `the create and the quota change: ${rows}`);
    assert.ok(
      rows.every((r) => r.includes(APP)),
      rows.join("\n"),
    );
    await shot("events");
  });

  it("deletes an application after a confirmation", async () => {
    await api("POST", "/api/v1/apps", {
      app_id: "e2e-doomed",
      cluster_id: CLUSTER,
      guaranteed_quota: 1,
      burst_quota: 1,
    });
    await go("/apps");
    await testId("delete-e2e-doomed").click();
    await confirmBox("Delete");
    await page.getByText("Application e2e-doomed deleted.").waitFor();
    await testId("app-link-e2e-doomed").waitFor({ state: "detached" });
  });

  it("fits a phone-width screen", async () => {
    await page.setViewportSize(PHONE);
    for (const [route, ready] of [
      ["/", "health-score"],
      ["/apps", `app-link-${APP}`],
      [`/apps/${APP}`, "fact-guaranteed"],
      ["/clusters", `cluster-${CLUSTER}`],
      ["/gateways", "gateway-gw-e2e"],
    ]) {
      await go(route);
      await testId(ready).waitFor();
      await page.waitForTimeout(300);
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - window.innerWidth,
      );
      assert.ok(
        overflow <= 1,
        `${route} is ${overflow} px wider than the phone`,
      );
      await shot(
        `phone-${route === "/" ? "overview" : route.slice(1).replace(/\//g, "-")}`,
      );
    }
    await page.getByRole("button", { name: "Open the menu" }).click();
    await testId("nav-events").waitFor();
    await shot("phone-menu");
    await page.setViewportSize(DESKTOP);
  });

  it("returns to the login page when the API answers 401", async () => {
    allowHttpErrors = true;
    await go("/apps");
    await page.evaluate(() => {
      const session = JSON.parse(sessionStorage.getItem("tollgate.session"));
      session.token = "forged.token.value";
      sessionStorage.setItem("tollgate.session", JSON.stringify(session));
    });
    await page.reload();
    await testId("login-submit").waitFor();
    await page.getByText("Your session has ended; log in again.").waitFor();
    allowHttpErrors = false;
    await shot("session-ended");
  });

  it("wrote nothing to the browser console", () => {
    assert.deepEqual(consoleErrors, []);
  });
});

// The real stack the browser tests drive: a private PostgreSQL, a private
// redis-server, tollgate-admin serving web/dist, and one nginx gateway in
// distributed mode, each on a free loopback port, in its own temporary
// folder, and each stopped by its PID.

import { spawn, execFileSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, "../..");
const BUILD = process.env.BUILD
  ? path.resolve(ROOT, process.env.BUILD)
  : path.join(ROOT, "build");
export const ADMIN_BIN = path.join(BUILD, "tollgate-admin");
export const MODULE = path.join(BUILD, "ngx_http_tollgate_module.so");
const PG_BIN = "/usr/lib/postgresql/15/bin";
const NGINX = process.env.TOLLGATE_NGINX ?? "/usr/sbin/nginx";

export const ADMIN_USER = "e2e-admin";
export const ADMIN_PASSWORD = "e2e password of some length";

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export async function waitFor(check, what, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${what} did not come up within ${timeoutMs} ms${last ? `: ${last.message}` : ""}`,
  );
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

async function stopChild(child, signal = "SIGTERM", timeoutMs = 10_000) {
  if (!child || exited(child)) return;
  const done = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  await done;
  clearTimeout(timer);
}

function logTo(file) {
  return fs.openSync(file, "a");
}

export class Stack {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-e2e-"));
    this.children = [];
  }

  spawn(cmd, args, options, name) {
    const log = logTo(path.join(this.dir, `${name}.log`));
    const child = spawn(cmd, args, { stdio: ["ignore", log, log], ...options });
    fs.closeSync(log);
    this.children.push({ child, name });
    return child;
  }

  log(name) {
    const file = path.join(this.dir, `${name}.log`);
    return fs.existsSync(file) ? fs.readFileSync(file, "utf8") : "";
  }

  // initdb refuses root: the cluster belongs to the postgres user, in a
  // folder of its own that user can enter.
  async startPostgres() {
    const pgDir = fs.mkdtempSync(path.join(os.tmpdir(), "tollgate-e2e-pg-"));
    execFileSync("chown", ["postgres:postgres", pgDir]);
    this.pgDir = pgDir;
    this.pgPort = await freePort();

    const asPostgres = (...argv) =>
      execFileSync("runuser", ["-u", "postgres", "--", ...argv], {
        stdio: "pipe",
      });
    asPostgres(
      `${PG_BIN}/initdb`,
      "-D",
      `${pgDir}/data`,
      "-U",
      "postgres",
      "-A",
      "trust",
      "--no-sync",
    );
    this.postgres = this.spawn(
      "runuser",
      [
        "-u",
        "postgres",
        "--",
        `${PG_BIN}/postgres`,
        "-D",
        `${pgDir}/data`,
        "-p",
        String(this.pgPort),
        "-k",
        pgDir,
        "-c",
        "listen_addresses=",
        "-c",
        "fsync=off",
        "-c",
        "max_connections=20",
      ],
      {},
      "postgres",
    );
    await waitFor(() => {
      execFileSync(
        `${PG_BIN}/pg_isready`,
        ["-h", pgDir, "-p", String(this.pgPort)],
        { stdio: "ignore" },
      );
      return true;
    }, "postgres");
    asPostgres(
      "psql",
      "-h",
      pgDir,
      "-p",
      String(this.pgPort),
      "-c",
      "CREATE DATABASE tollgate",
    );
  }

  async startRedis() {
    this.redisPort = await freePort();
    const redisDir = path.join(this.dir, "redis");
    fs.mkdirSync(redisDir);
    this.redis = this.spawn(
      "redis-server",
      [
        "--port",
        String(this.redisPort),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        redisDir,
      ],
      {},
      "redis",
    );
    await waitFor(
      () =>
        execFileSync("redis-cli", ["-p", String(this.redisPort), "ping"], {
          stdio: "pipe",
        })
          .toString()
          .trim() === "PONG",
      "redis",
    );
  }

  async startAdmin(staticDir) {
    this.adminPort = await freePort();
    this.base = `http://127.0.0.1:${this.adminPort}`;
    this.admin = this.spawn(
      ADMIN_BIN,
      [],
      {
        env: {
          ...process.env,
          TOLLGATE_ADMIN_LISTEN: `127.0.0.1:${this.adminPort}`,
          TOLLGATE_DATABASE_URL: `host=${this.pgDir} port=${this.pgPort} user=postgres dbname=tollgate`,
          TOLLGATE_REDIS: `127.0.0.1:${this.redisPort} timeout=500ms`,
          TOLLGATE_JWT_SECRET: `e2e-secret-${"y".repeat(40)}`,
          TOLLGATE_ADMIN_USER: ADMIN_USER,
          TOLLGATE_ADMIN_PASSWORD: ADMIN_PASSWORD,
          TOLLGATE_STATIC_DIR: staticDir,
        },
      },
      "admin",
    );
    await waitFor(async () => {
      if (exited(this.admin))
        throw new Error(
          `tollgate-admin exited:\n${this.log("admin").slice(-2000)}`,
        );
      const answer = await fetch(`${this.base}/healthz`);
      return answer.status === 200;
    }, "tollgate-admin");
  }

  // One gateway of cluster `clusterId`, reading its quotas from Redis. The
  // limited location serves a small file, so that the limiter runs before
  // the content phase answers.
  async startGateway(gatewayId, clusterId) {
    const prefix = path.join(this.dir, "nginx");
    fs.mkdirSync(path.join(prefix, "data/obj"), { recursive: true });
    fs.mkdirSync(path.join(prefix, "tmp"));
    fs.writeFileSync(path.join(prefix, "data/obj/1k"), "k".repeat(1024));
    this.gatewayPort = await freePort();
    const user =
      process.getuid && process.getuid() === 0 ? "user root root;" : "";
    const conf = `
load_module ${MODULE};
${user}
worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
lock_file ${prefix}/nginx.lock;
error_log ${prefix}/error.log info;
events { worker_connections 256; }
http {
    client_body_temp_path ${prefix}/tmp/body;
    proxy_temp_path ${prefix}/tmp/proxy;
    fastcgi_temp_path ${prefix}/tmp/fastcgi;
    uwsgi_temp_path ${prefix}/tmp/uwsgi;
    scgi_temp_path ${prefix}/tmp/scgi;
    access_log off;
    tollgate_zone tg:1m;
    tollgate_redis 127.0.0.1:${this.redisPort};
    tollgate_gateway_id ${gatewayId};
    # Chromium, PostgreSQL and the daemon share two cores with Redis
    # here: latency thresholds far above what a busy test host shows,
    # so the gateway's level changes only when the test forces it
    tollgate_degradation conserve=500ms local_first=2s;
    server {
        listen 127.0.0.1:${this.gatewayPort};
        tollgate_cluster ${clusterId};
        location / {
            tollgate zone=tg app=$http_x_app_id;
            root ${prefix}/data;
        }
        location = /tollgate/status { tollgate_status; }
    }
}
`;
    fs.writeFileSync(path.join(prefix, "nginx.conf"), conf);
    this.nginxPrefix = prefix;
    this.gateway = this.spawn(
      NGINX,
      [
        "-p",
        prefix,
        "-c",
        path.join(prefix, "nginx.conf"),
        "-e",
        path.join(prefix, "error.log"),
      ],
      {},
      "nginx",
    );
    await waitFor(async () => {
      if (exited(this.gateway))
        throw new Error(
          `nginx exited:\n${fs.readFileSync(path.join(prefix, "error.log"), "utf8").slice(-2000)}`,
        );
      const answer = await fetch(
        `http://127.0.0.1:${this.gatewayPort}/tollgate/status`,
      );
      return answer.status === 200;
    }, "nginx");
  }

  // The gateway's own JSON status (tollgate_status).
  async gatewayStatus() {
    const answer = await fetch(
      `http://127.0.0.1:${this.gatewayPort}/tollgate/status`,
    );
    return answer.json();
  }

  // Status codes of `count` GETs sent one after another as app `appId`.
  async hitGateway(appId, count) {
    const codes = [];
    for (let i = 0; i < count; i++) {
      const answer = await fetch(
        `http://127.0.0.1:${this.gatewayPort}/obj/1k`,
        {
          headers: { "X-App-Id": appId },
        },
      );
      await answer.arrayBuffer();
      codes.push(answer.status);
    }
    return codes;
  }

  async stop() {
    for (const { child, name } of [...this.children].reverse()) {
      // postgres under runuser: SIGINT is its fast shutdown
      await stopChild(child, name === "postgres" ? "SIGINT" : "SIGTERM");
    }
    if (!process.env.TOLLGATE_E2E_KEEP) {
      fs.rmSync(this.dir, { recursive: true, force: true });
      if (this.pgDir) fs.rmSync(this.pgDir, { recursive: true, force: true });
    }
  }
}

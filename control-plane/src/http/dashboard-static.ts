import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { AppError } from "@tollgate/shared";
import type { Context, Middleware, Next } from "koa";

export const DASHBOARD_PATH = "/dashboard";

/** The dashboard package's build output, next to this package in the repository. */
export function defaultDashboardRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "dashboard", "dist");
}

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".woff2": "font/woff2",
  ".txt": "text/plain; charset=utf-8",
};

interface StaticFile {
  body: Buffer;
  gzip: Buffer | undefined;
  type: string;
  /** Vite puts content-hashed files under assets/: they never change, so they cache for a year. */
  immutable: boolean;
}

/** The whole build, read once: it is small, and serving from memory needs no path handling at request time. */
function loadBuild(root: string): Map<string, StaticFile> | undefined {
  if (!existsSync(join(root, "index.html"))) return undefined;
  const files = new Map<string, StaticFile>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const rel = relative(root, path).split(sep).join("/");
        const body = readFileSync(path);
        const type = TYPES[extname(name)] ?? "application/octet-stream";
        const compressible = /^(text\/|image\/svg|application\/json)/.test(type) && body.length > 512;
        files.set(rel, {
          body,
          gzip: compressible ? gzipSync(body, { level: 9 }) : undefined,
          type,
          immutable: rel.startsWith("assets/"),
        });
      }
    }
  };
  walk(root);
  return files;
}

/** Headers that keep the dashboard's pages out of frames and its scripts to its own origin. */
function securityHeaders(ctx: Context): void {
  ctx.set(
    "Content-Security-Policy",
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  );
  ctx.set("X-Content-Type-Options", "nosniff");
  ctx.set("X-Frame-Options", "DENY");
  ctx.set("Referrer-Policy", "no-referrer");
}

/**
 * Serves the built dashboard at /dashboard: files by path, index.html for every
 * other /dashboard/* path (client-side routes), long-lived caching for hashed assets.
 */
export function serveDashboard(options: { root: string }): Middleware {
  let build: Map<string, StaticFile> | undefined;
  return async (ctx: Context, next: Next) => {
    if (ctx.path !== DASHBOARD_PATH && !ctx.path.startsWith(`${DASHBOARD_PATH}/`)) return next();
    if (ctx.method !== "GET" && ctx.method !== "HEAD") {
      ctx.set("Allow", "GET, HEAD");
      throw new AppError("method_not_allowed", `${ctx.method} is not allowed on the dashboard's static files`);
    }
    build ??= loadBuild(options.root);
    if (!build) throw new AppError("not_found", "the dashboard is not built: run `pnpm build` at the repository root");
    const rel = ctx.path.slice(DASHBOARD_PATH.length + 1);
    let file = rel ? build.get(rel) : undefined;
    if (!file) {
      // A missing hashed asset is a 404, not the app shell (a stale tab would parse HTML as JS).
      if (rel.startsWith("assets/")) throw new AppError("not_found", `no dashboard asset ${rel}`);
      file = build.get("index.html")!;
    }
    securityHeaders(ctx);
    ctx.set("Cache-Control", file.immutable ? "public, max-age=31536000, immutable" : "no-cache");
    ctx.set("Vary", "Accept-Encoding");
    ctx.type = file.type;
    if (file.gzip && ctx.acceptsEncodings("gzip", "identity") === "gzip") {
      ctx.set("Content-Encoding", "gzip");
      ctx.body = file.gzip;
    } else {
      ctx.body = file.body;
    }
  };
}

import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "@tollgate/shared";
import { createGateway, loadConfig } from "../index.js";
import {
  capturedLogger,
  endpoints,
  eventually,
  FakeControlPlane,
  makeKey,
  makeTestPki,
  opensslVersion,
  tempDir,
  type TestPki,
} from "@tollgate/testkit";
import { testConfig } from "../../test/test-config.js";

describe("TLS to the control plane", () => {
  const certDir = tempDir("tollgate-pki-");
  let pki: TestPki;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(() => {
    // No skipping: without openssl this fails, naming what is missing.
    expect(opensslVersion()).toMatch(/^OpenSSL /);
    pki = makeTestPki(certDir.path);
  });
  afterAll(() => certDir.remove());
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  /** A control plane on https that requires a client certificate signed by the test CA. */
  async function mtlsControlPlane() {
    const key = makeKey();
    const cp = new FakeControlPlane([key.upsert], 4, undefined, undefined, {
      tls: { key: pki.pem.serverKey, cert: pki.pem.serverCert, ca: pki.pem.caCert },
    });
    await cp.start();
    cleanups.push(() => cp.stop());
    return { cp, key };
  }

  async function gatewayWith(env: Record<string, string>, cp: FakeControlPlane) {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const config = loadConfig({ GATEWAY_TOKEN: cp.token, CONTROL_PLANE_URL: cp.url, ...env });
    const { logger, lines } = capturedLogger();
    const gw = createGateway(testConfig(dir.path, cp.url, cp.token, { controlPlaneTls: config.controlPlaneTls }), {
      logger,
      sync: { baseDelayMs: 10, maxDelayMs: 50 },
    });
    const api = endpoints(await gw.start());
    cleanups.push(() => gw.stop());
    return { gw, api, lines };
  }

  it("syncs over mTLS with the private CA and a client certificate", async () => {
    const { cp, key } = await mtlsControlPlane();
    expect(cp.url).toMatch(/^https:\/\//);
    const { api } = await gatewayWith(
      {
        CONTROL_PLANE_CA_FILE: pki.files.caCert,
        GATEWAY_TLS_CERT_FILE: pki.files.clientCert,
        GATEWAY_TLS_KEY_FILE: pki.files.clientKey,
      },
      cp,
    );
    await eventually(async () => ((await api.readyz()).status === 200 ? true : undefined));
    expect((await api.readyz()).body).toMatchObject({ source: "control_plane", connected: true, applied_revision: 4 });
    expect((await api.chat(key.secret)).status).toBe(200);
    await eventually(() => (cp.acks.some((a) => a.revision === 4n) ? true : undefined));
  });

  it("without a client certificate: logs a clear TLS error, keeps retrying, stays up and not ready", async () => {
    const { cp } = await mtlsControlPlane();
    const { api, lines } = await gatewayWith({ CONTROL_PLANE_CA_FILE: pki.files.caCert }, cp);
    await eventually(() => (cp.tlsFailures >= 3 ? true : undefined));
    const err = await eventually(() =>
      lines.find((l) => l.level === 50 && String(l.msg).startsWith("TLS with the control plane")),
    );
    expect(err.msg).toBe(
      `TLS with the control plane at ${cp.url} failed: the control plane requires a client certificate; set GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE to a certificate signed by a CA the control plane trusts. Retrying.`,
    );
    expect(cp.subscriptions).toHaveLength(0);
    const ready = await api.readyz();
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ ready: false, reason: "no_snapshot", connected: false });
  });

  it("without the private CA: refuses the control plane's certificate with a clear error", async () => {
    const { cp } = await mtlsControlPlane();
    const { api, lines } = await gatewayWith(
      {
        CONTROL_PLANE_CA_FILE: pki.files.otherCaCert,
        GATEWAY_TLS_CERT_FILE: pki.files.clientCert,
        GATEWAY_TLS_KEY_FILE: pki.files.clientKey,
      },
      cp,
    );
    const errors = await eventually(() => {
      const found = lines.filter((l) => l.level === 50 && String(l.msg).startsWith("TLS with the control plane"));
      return found.length >= 2 ? found : undefined;
    });
    expect(errors[0]!.msg).toBe(
      `TLS with the control plane at ${cp.url} failed: the control plane's certificate is not trusted (self-signed certificate in certificate chain); set CONTROL_PLANE_CA_FILE to the CA that signed it. Retrying.`,
    );
    expect(cp.subscriptions).toHaveLength(0);
    expect((await api.readyz()).status).toBe(503);
  });

  describe("configuration", () => {
    const base = { GATEWAY_TOKEN: "gwt_x", CONTROL_PLANE_URL: "https://cp.internal:50051" };

    it("reads the CA, certificate and key files", () => {
      const c = loadConfig({
        ...base,
        CONTROL_PLANE_CA_FILE: pki.files.caCert,
        GATEWAY_TLS_CERT_FILE: pki.files.clientCert,
        GATEWAY_TLS_KEY_FILE: pki.files.clientKey,
      });
      expect(c.controlPlaneTls).toEqual({ ca: pki.pem.caCert, cert: pki.pem.clientCert, key: pki.pem.clientKey });
      expect(loadConfig(base).controlPlaneTls).toEqual({});
      expect(loadConfig({ ...base, CONTROL_PLANE_URL: "http://127.0.0.1:50051" }).controlPlaneTls).toEqual({});
    });

    it("refuses a certificate without its key, or a key without its certificate, naming the missing one", () => {
      expect(() => loadConfig({ ...base, GATEWAY_TLS_CERT_FILE: pki.files.clientCert })).toThrow(
        new ConfigError(
          "GATEWAY_TLS_KEY_FILE is required when GATEWAY_TLS_CERT_FILE is set: mTLS needs both the client certificate and its private key",
        ),
      );
      expect(() => loadConfig({ ...base, GATEWAY_TLS_KEY_FILE: pki.files.clientKey })).toThrow(
        new ConfigError(
          "GATEWAY_TLS_CERT_FILE is required when GATEWAY_TLS_KEY_FILE is set: mTLS needs both the client certificate and its private key",
        ),
      );
    });

    it("names the variable whose file cannot be read or is not what it should be", () => {
      const missing = `${certDir.path}/nope.pem`;
      const cases: Array<[Record<string, string>, string]> = [
        [{ CONTROL_PLANE_CA_FILE: missing }, "CONTROL_PLANE_CA_FILE"],
        [{ GATEWAY_TLS_CERT_FILE: missing, GATEWAY_TLS_KEY_FILE: pki.files.clientKey }, "GATEWAY_TLS_CERT_FILE"],
        [{ GATEWAY_TLS_CERT_FILE: pki.files.clientCert, GATEWAY_TLS_KEY_FILE: missing }, "GATEWAY_TLS_KEY_FILE"],
        [{ CONTROL_PLANE_CA_FILE: pki.files.clientKey }, "CONTROL_PLANE_CA_FILE"],
        [
          { GATEWAY_TLS_CERT_FILE: pki.files.clientCert, GATEWAY_TLS_KEY_FILE: pki.files.serverKey },
          "GATEWAY_TLS_KEY_FILE",
        ],
        [
          { CONTROL_PLANE_CA_FILE: pki.files.caCert, CONTROL_PLANE_URL: "http://127.0.0.1:50051" },
          "CONTROL_PLANE_CA_FILE",
        ],
      ];
      for (const [env, name] of cases) {
        expect(() => loadConfig({ ...base, ...env })).toThrow(ConfigError);
        expect(() => loadConfig({ ...base, ...env })).toThrow(name);
      }
      // The message names the variable and why, never the value (issue 22: a secret put in the wrong variable must not reach a log).
      expect(() => loadConfig({ ...base, CONTROL_PLANE_CA_FILE: missing })).toThrow(
        "CONTROL_PLANE_CA_FILE names a file that cannot be read (ENOENT)",
      );
      expect(() => loadConfig({ ...base, CONTROL_PLANE_CA_FILE: missing })).not.toThrow(missing);
    });
  });
});

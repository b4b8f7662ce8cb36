import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { ConfigError, envOptional } from "@tollgate/shared";

type Env = Record<string, string | undefined>;

/** PEM material for TLS to the control plane (https:// only). */
export interface ControlPlaneTls {
  /** A private CA to trust besides the system ones (CONTROL_PLANE_CA_FILE). */
  ca?: string;
  /** Client certificate and key for mTLS (GATEWAY_TLS_CERT_FILE + GATEWAY_TLS_KEY_FILE). */
  cert?: string;
  key?: string;
}

/** Reads a PEM file named by `variable`; a missing or unreadable file is a ConfigError naming it. */
function readPem(env: Env, variable: string): string | undefined {
  const path = envOptional(env, variable);
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      `${variable} names a file that cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  if (!text.includes("-----BEGIN ")) {
    throw new ConfigError(`${variable} names a file that is not PEM (no "-----BEGIN" line)`);
  }
  return text;
}

/**
 * CONTROL_PLANE_CA_FILE, GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE, read and
 * checked at start-up so a wrong file fails there rather than on the first dial.
 */
export function loadControlPlaneTls(env: Env, controlPlaneUrl: string): ControlPlaneTls {
  const ca = readPem(env, "CONTROL_PLANE_CA_FILE");
  const certSet = envOptional(env, "GATEWAY_TLS_CERT_FILE") !== undefined;
  const keySet = envOptional(env, "GATEWAY_TLS_KEY_FILE") !== undefined;
  if (certSet !== keySet) {
    const [given, missing] = certSet
      ? ["GATEWAY_TLS_CERT_FILE", "GATEWAY_TLS_KEY_FILE"]
      : ["GATEWAY_TLS_KEY_FILE", "GATEWAY_TLS_CERT_FILE"];
    throw new ConfigError(
      `${missing} is required when ${given} is set: mTLS needs both the client certificate and its private key`,
    );
  }
  const cert = readPem(env, "GATEWAY_TLS_CERT_FILE");
  const key = readPem(env, "GATEWAY_TLS_KEY_FILE");
  if (ca !== undefined) {
    try {
      new X509Certificate(ca);
    } catch (err) {
      throw new ConfigError(`CONTROL_PLANE_CA_FILE does not hold a valid certificate: ${(err as Error).message}`);
    }
  }
  if (cert !== undefined && key !== undefined) {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(cert);
    } catch (err) {
      throw new ConfigError(`GATEWAY_TLS_CERT_FILE does not hold a valid certificate: ${(err as Error).message}`);
    }
    let privateKey;
    try {
      privateKey = createPrivateKey(key);
    } catch (err) {
      throw new ConfigError(
        `GATEWAY_TLS_KEY_FILE does not hold a valid (unencrypted) private key: ${(err as Error).message}`,
      );
    }
    if (!x509.checkPrivateKey(privateKey)) {
      throw new ConfigError("GATEWAY_TLS_KEY_FILE is not the private key of the certificate in GATEWAY_TLS_CERT_FILE");
    }
  }
  const tls: ControlPlaneTls = {};
  if (ca !== undefined) tls.ca = ca;
  if (cert !== undefined && key !== undefined) {
    tls.cert = cert;
    tls.key = key;
  }
  if (Object.keys(tls).length > 0 && !controlPlaneUrl.startsWith("https://")) {
    const names = [
      ca !== undefined ? "CONTROL_PLANE_CA_FILE" : "",
      cert !== undefined ? "GATEWAY_TLS_CERT_FILE" : "",
    ].filter(Boolean);
    throw new ConfigError(
      `${names.join(" and ")} only apply to an https:// control plane, but CONTROL_PLANE_URL is not https://: use https:// or unset them`,
    );
  }
  return tls;
}

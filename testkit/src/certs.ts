import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

// The one test PKI generator (the gateway's and the control plane's unit tests
// each had their own). The result carries every view either used.

type PkiFile = "caCert" | "serverCert" | "serverKey" | "clientCert" | "clientKey";

export interface TestPki {
  dir: string;
  /** File paths, as the services' *_FILE variables take them. */
  files: Record<PkiFile | "otherCaCert", string>;
  /** The same, read as PEM text. */
  pem: Record<PkiFile, string>;
  /** The same as Buffers, as node:tls and node:http2 options take them. */
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  /** The same paths under the names the control plane's tests used. */
  paths: Record<"ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey", string>;
}

function openssl(cwd: string, args: string[]): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** The openssl CLI's version line; throws when it is not installed. */
export function opensslVersion(): string {
  return execFileSync("openssl", ["version"], { encoding: "utf8" }).trim();
}

function newCa(dir: string, name: string, cn: string): void {
  openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-subj",
    `/CN=${cn}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

function leaf(dir: string, name: string, cn: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, [
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ]);
  openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-set_serial",
    String(Date.now()),
    "-days",
    "2",
    "-out",
    `${name}.crt`,
    "-extfile",
    `${name}.ext`,
  ]);
}

/**
 * A private CA, a server certificate for 127.0.0.1/localhost and a client
 * certificate, made with the openssl CLI in `dir`; plus an unrelated CA that
 * trusts nothing here. EC P-256 keys: fast to make, and what both services accept.
 */
export function makeTestPki(dir: string): TestPki {
  newCa(dir, "ca", "Tollgate Test CA");
  newCa(dir, "other-ca", "Some Other CA");
  leaf(dir, "server", "control-plane", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  leaf(dir, "client", "gateway", "extendedKeyUsage=clientAuth\n");
  const files = {
    caCert: join(dir, "ca.crt"),
    serverCert: join(dir, "server.crt"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.crt"),
    clientKey: join(dir, "client.key"),
    otherCaCert: join(dir, "other-ca.crt"),
  };
  const read = (p: string) => readFileSync(p, "utf8");
  const pem = {
    caCert: read(files.caCert),
    serverCert: read(files.serverCert),
    serverKey: read(files.serverKey),
    clientCert: read(files.clientCert),
    clientKey: read(files.clientKey),
  };
  return {
    dir,
    files,
    pem,
    ca: Buffer.from(pem.caCert),
    serverCert: Buffer.from(pem.serverCert),
    serverKey: Buffer.from(pem.serverKey),
    clientCert: Buffer.from(pem.clientCert),
    clientKey: Buffer.from(pem.clientKey),
    paths: {
      ca: files.caCert,
      serverCert: files.serverCert,
      serverKey: files.serverKey,
      clientCert: files.clientCert,
      clientKey: files.clientKey,
    },
  };
}

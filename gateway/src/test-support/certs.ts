import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  /** File paths, as the gateway's *_FILE variables take them. */
  files: { caCert: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string; otherCaCert: string };
  /** The same, read as PEM text. */
  pem: { caCert: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string };
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
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${cn}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
}

function leaf(dir: string, name: string, cn: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`]);
  openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", String(Date.now()), "-days", "2", "-out", `${name}.crt`, "-extfile", `${name}.ext`]);
}

/**
 * A private CA, a control-plane server certificate for 127.0.0.1/localhost
 * and a gateway client certificate, made with the openssl CLI in `dir`; plus
 * an unrelated CA that trusts nothing here.
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
  return {
    dir,
    files,
    pem: {
      caCert: read(files.caCert),
      serverCert: read(files.serverCert),
      serverKey: read(files.serverKey),
      clientCert: read(files.clientCert),
      clientKey: read(files.clientKey),
    },
  };
}

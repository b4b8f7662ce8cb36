import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

export interface TestPki {
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  paths: Record<"ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey", string>;
}

/** A throwaway CA with a server certificate for localhost/127.0.0.1 and a client certificate, made with the openssl CLI. */
export function makeTestPki(dir: string): TestPki {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tollgate-test-ca", "-keyout", "ca.key", "-out", "ca.pem");
  for (const [name, ext] of [
    ["server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth"],
    ["client", "extendedKeyUsage=clientAuth"],
  ] as const) {
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", `/CN=tollgate-test-${name}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
    execFileSync("sh", ["-c", `printf '%b' "${ext.replace(/\n/g, "\\n")}" > ${name}.ext`], { cwd: dir });
    run("x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
  }
  const paths = {
    ca: join(dir, "ca.pem"),
    serverCert: join(dir, "server.pem"),
    serverKey: join(dir, "server.key"),
    clientCert: join(dir, "client.pem"),
    clientKey: join(dir, "client.key"),
  };
  return {
    ca: readFileSync(paths.ca),
    serverCert: readFileSync(paths.serverCert),
    serverKey: readFileSync(paths.serverKey),
    clientCert: readFileSync(paths.clientCert),
    clientKey: readFileSync(paths.clientKey),
    paths,
  };
}

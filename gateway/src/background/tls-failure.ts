import type { ConnectError } from "@connectrpc/connect";

/** A TLS failure in words an operator can act on: what happened, and which variable to check. */
export interface TlsFailure {
  reason: string;
  fix: string;
  /** The raw error text, for the log's detail field. */
  detail: string;
}

/**
 * Recognizes a TLS failure in a ConnectError (whose message is all that is
 * left of Node's error: the cause chain does not survive the transport).
 */
export function tlsFailure(err: ConnectError): TlsFailure | undefined {
  const detail = err.rawMessage.trim();
  // OpenSSL's "...:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:..." → its reason.
  const openssl = /SSL routines:[^:]*:([^:]+):/.exec(detail)?.[1]?.trim();
  const text = openssl ?? detail;
  if (/alert certificate required/i.test(text)) {
    return {
      reason: "the control plane requires a client certificate",
      fix: "set GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE to a certificate signed by a CA the control plane trusts",
      detail,
    };
  }
  if (
    /alert (bad certificate|unknown ca|certificate unknown|certificate revoked|certificate expired|unsupported certificate|decrypt error|access denied)/i.test(
      text,
    )
  ) {
    return {
      reason: `the control plane refused the client certificate (${text})`,
      fix: "check GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE against the client CA the control plane trusts",
      detail,
    };
  }
  if (
    /self[- ]signed certificate|unable to get (local )?issuer certificate|unable to verify the first certificate|certificate has expired|certificate is not yet valid|certificate signature failure/i.test(
      text,
    )
  ) {
    return {
      reason: `the control plane's certificate is not trusted (${text})`,
      fix: "set CONTROL_PLANE_CA_FILE to the CA that signed it",
      detail,
    };
  }
  if (/Hostname\/IP does not match|altnames/i.test(text)) {
    return {
      reason: `the control plane's certificate does not name the host in CONTROL_PLANE_URL (${text})`,
      fix: "use the host name the certificate was issued for, or reissue it",
      detail,
    };
  }
  if (/\bssl\b|\btls\b|certificate|handshake|wrong version number|alert/i.test(text)) {
    return {
      reason: text,
      fix: "check CONTROL_PLANE_URL (https:// for a TLS control plane), CONTROL_PLANE_CA_FILE, GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE",
      detail,
    };
  }
  return undefined;
}

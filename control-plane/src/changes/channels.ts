/** The one Postgres NOTIFY channel every replica listens on, and the payload prefixes it carries. */
export const CHANGES_CHANNEL = "tollgate_changes";
/** NOTIFY payload prefix telling every replica a gateway token was revoked. */
export const REVOKED_TOKEN_PREFIX = "revoke:";
/**
 * NOTIFY payload prefix telling every replica's receipts that gateways of an organization
 * acknowledged: `acks:<org>` (the replica that wrote them recognises its own echo, AckWriter).
 */
export const ACKS_PREFIX = "acks:";

// Client-address parsing lives in @tollgate/shared (the control plane uses it too).
export {
  clientAddress,
  compileIpRules,
  ipInList,
  normalizeAddress,
  parseIpRule,
  unparseableForwardedBucket,
  type IpRule,
} from "@tollgate/shared";

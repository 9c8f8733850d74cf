/** True on little-endian hosts: nlmsghdr, nfgenmsg.nfgen_family and NLA_*
 * attributes without NLA_F_NET_BYTEORDER are host order. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function align4(n: number): number {
  return (n + 3) & ~3;
}

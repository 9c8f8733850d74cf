import type { NetlinkTransport } from '../netlink/socket.js';
import type { CopyMode } from './encode.js';
import type { NfQueueFlags } from './flags.js';

export interface NfQueueOptions {
  /** Queue number 0..65535 (`-j NFQUEUE --queue-num N`). */
  queue: number;
  /** Open the socket inside this network namespace (`ip netns` name or path). */
  netns?: string;
  /** Default 'packet'. 'none' behaves like 'meta': metadata, no payload. */
  copyMode?: CopyMode;
  /** Bytes of each packet to copy; default 0xffff (the kernel caps it at 65531). */
  copyRange?: number;
  /** Packets the kernel holds for this queue; more are dropped, or accepted with failOpen. Kernel default 1024. */
  maxQueueLength?: number;
  /** Flags to set (true) or clear (false); absent ones are left alone. */
  flags?: NfQueueFlags;
  /** Throw when the kernel refuses a flag instead of reporting it in `flagReport`. */
  strictFlags?: boolean;
  /** Socket receive buffer (SO_RCVBUFFORCE); default 8 MiB. */
  rcvbuf?: number;
  /** The verdict a packet gets at its deadline and on close. Default 'accept'. */
  defaultVerdict?: 'accept' | 'drop';
  /** Milliseconds a packet may wait for a verdict. Default 10,000; Infinity disables it (then a
   * packet that is never answered waits until close). */
  deadlineMs?: number;
  /** Coalesce verdicts given in the same tick into NFQNL_MSG_VERDICT_BATCH
   * messages where that is exact (a contiguous prefix, same plain verdict). Default true. */
  batchVerdicts?: boolean;
  /** Probe whether the kernel has the nfqueue conntrack glue (needed for
   * connmark/connlabels verdicts) by setting and clearing the CONNTRACK flag. Default true. */
  probeConntrackGlue?: boolean;
  /** Timeout of configuration requests, ms. Default 5000. */
  timeoutMs?: number;
  /** Receive slots per wakeup (recvmmsg batch). Default 16. */
  slots?: number;
  /** Test seam: a transport instead of a real socket. */
  transport?: NetlinkTransport;
}

/** How a message answering one of our requests advances that request. */
import { parseDoneMessage, parseErrorMessage } from './ack.js';
import {
  NLM_F_DUMP_INTR,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
} from './constants.js';
import { NetlinkError } from './errors.js';
import type { NetlinkMessage } from './message.js';
import type { Pending } from './requests.js';

export interface ReplyHandlers {
  /** The request is over: answered, refused (`error`) or its dump ended. */
  settle(p: Pending, error?: Error): void;
  /** Stops delivering the request's messages; its end is still awaited. */
  abandon(p: Pending): void;
}

export function routeReply(p: Pending, msg: NetlinkMessage, on: ReplyHandlers): void {
  if (msg.type === NLMSG_NOOP || msg.type === NLMSG_OVERRUN) return;
  if (msg.type === NLMSG_ERROR) {
    const status = parseErrorMessage(msg);
    if (status.errno !== 0) {
      on.settle(p, new NetlinkError(status.errno, p.operation, status.extack));
    } else {
      // For a dump, a plain ACK means the kernel did not start one (a
      // started dump suppresses the ACK and ends with NLMSG_DONE).
      on.settle(p);
    }
    return;
  }
  if (p.dump && msg.type === NLMSG_DONE) {
    // The kernel checks dump consistency for NLMSG_DONE too.
    if (msg.flags & NLM_F_DUMP_INTR) p.interrupted = true;
    const status = parseDoneMessage(msg);
    if (status.errno !== 0)
      on.settle(p, new NetlinkError(status.errno, p.operation, status.extack));
    else on.settle(p);
    return;
  }
  if (p.discarding) return;
  if (msg.flags & NLM_F_DUMP_INTR) p.interrupted = true;
  p.messages++;
  if (p.dump) {
    try {
      p.onMessage(msg);
    } catch (error) {
      // The consumer failed: stop delivering, report its error, drain the rest.
      on.abandon(p);
      p.reject(error as Error);
    }
  } else {
    p.replies.push(msg);
  }
}

/** What conntrack-tools 1.4.7 prints after "Operation failed: " for a kernel error. */
import type { NetlinkError } from '../../netlink/errors.js';
import type { CompatArgs } from './args.js';

/** err2str() of conntrack-tools, for the errors a command can meet. */
export function kernelErrorText(
  error: NetlinkError,
  command: CompatArgs['command'],
  expect = false,
): string {
  const create = command === 'I' || command === 'A';
  if (expect && command === 'I') {
    // err2str() with EXP_CREATE; strerror() otherwise.
    if (error.code === 'ENOENT') return 'master conntrack not found';
    if (error.code === 'EEXIST') return 'File exists';
  }
  if (expect && error.code === 'ENOENT') return 'No such file or directory';
  switch (error.code) {
    case 'EEXIST':
      if (command === 'I') return 'Such conntrack exists, try -U to update';
      return 'File exists';
    case 'ENOENT':
      return create || command === 'G' || command === 'D'
        ? "such conntrack doesn't exist"
        : 'No such file or directory';
    case 'EINVAL':
      return 'invalid parameters';
    case 'EPERM':
      return 'sorry, you must be root or get CAP_NET_ADMIN capability to do this';
    case 'ENOMEM':
      return 'not enough memory';
    case 'ETIME':
      return create ? 'conntrack has expired' : 'Timer expired';
    case 'EOPNOTSUPP':
      return 'Operation not supported';
    case 'EBUSY':
      return 'Device or resource busy';
    case 'ENOSPC':
      return 'No space left on device';
    case 'EAFNOSUPPORT':
      return command === 'G'
        ? 'protocol not supported'
        : 'Address family not supported by protocol';
    default:
      return error.message;
  }
}

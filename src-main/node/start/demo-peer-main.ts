/**
 * Entry of the demo's peer process (`node demo-peer-main.js ADDRESS DNS-ADDRESS`, inside the peer
 * namespace): prints `ready` once every server listens, runs until SIGTERM.
 */
import { servePeer } from './demo-peer.js';

const [address, dnsAddress] = process.argv.slice(2);
const v4 = /^\d{1,3}(\.\d{1,3}){3}$/u;
if (
  address === undefined ||
  dnsAddress === undefined ||
  !v4.test(address) ||
  !v4.test(dnsAddress)
) {
  process.stderr.write('demo peer: usage: demo-peer-main.js ADDRESS DNS-ADDRESS (IPv4)\n');
  process.exit(2);
}
servePeer(address, dnsAddress).then(
  () => process.stdout.write('ready\n'),
  (error: Error) => {
    process.stderr.write(`demo peer: ${error.message}\n`);
    process.exit(1);
  },
);
process.on('SIGTERM', () => process.exit(0));

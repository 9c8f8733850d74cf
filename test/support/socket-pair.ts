import { readdirSync, readlinkSync } from 'node:fs';
import type { SocketTuple } from '../../helper/attribution/types.js';
import type { SocketChild } from './socket-child.js';

export interface TcpPair {
  /** Listening on 127.0.0.1, and it has accepted the client's connection. */
  server: SocketChild;
  client: SocketChild;
  port: number;
  sport: number;
  /** The client's tuple (the connection's original direction). */
  tuple: SocketTuple;
}

/** A loopback IPv4 TCP connection between two child processes made by `spawn`. */
export async function tcpPair(spawn: (args: string[]) => SocketChild): Promise<TcpPair> {
  const server = spawn(['tcp-listen', '127.0.0.1', '0']);
  const port = (await server.ready()).port!;
  const client = spawn(['tcp-connect', '127.0.0.1', String(port)]);
  const sport = (await client.ready()).port!;
  await server.waitFor((e) => e.ev === 'accepted');
  const tuple: SocketTuple = {
    family: 'ipv4',
    protocol: 'tcp',
    src: '127.0.0.1',
    sport,
    dst: '127.0.0.1',
    dport: port,
  };
  return { server, client, port, sport, tuple };
}

export interface UdpSender {
  /** Sent one datagram from an unconnected socket it keeps open. */
  sender: SocketChild;
  sport: number;
  /** Its datagram's tuple: loopback (127.0.0.1 or ::1) to port 9. */
  tuple: SocketTuple;
}

/** A child process that sent a UDP datagram to port 9 on loopback and keeps its socket. */
export async function udpSender(
  spawn: (args: string[]) => SocketChild,
  family: 'ipv4' | 'ipv6' = 'ipv4',
): Promise<UdpSender> {
  const host = family === 'ipv4' ? '127.0.0.1' : '::1';
  const sender = spawn(['udp-send', host, '9', family]);
  const sport = (await sender.ready()).port!;
  const tuple: SocketTuple = { family, protocol: 'udp', src: host, sport, dst: host, dport: 9 };
  return { sender, sport, tuple };
}

/** The socket inodes a process holds, read from /proc (the tests' oracle). */
export function socketInodesOf(pid: number): number[] {
  const out: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(Number(m[1]));
    } catch {
      // The fd was closed meanwhile.
    }
  }
  return out;
}

import { constants } from 'node:os';

const names = new Map<number, string>();
for (const [name, value] of Object.entries(constants.errno)) {
  // Several names can share a number (EAGAIN/EWOULDBLOCK); the first listed wins.
  if (!names.has(value)) names.set(value, name);
}

/** The symbolic name of a positive errno ("ENOENT"), or "E<number>" if unknown. */
export function errnoName(errno: number): string {
  return names.get(errno) ?? `E${errno}`;
}

/** The number for a symbolic errno name, if this platform defines it. */
export function errnoNumber(name: string): number | undefined {
  return (constants.errno as Record<string, number | undefined>)[name];
}

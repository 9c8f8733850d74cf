import { constants } from 'node:os';

const names = new Map<number, string>();
// Where several names share a number, the one the kernel's sources use wins.
const preferred = ['EOPNOTSUPP', 'EAGAIN', 'EDEADLK'];
for (const name of preferred) {
  const value = (constants.errno as Record<string, number | undefined>)[name];
  if (value !== undefined) names.set(value, name);
}
for (const [name, value] of Object.entries(constants.errno)) {
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

/**
 * Bounds on the connections that have not authenticated yet (handshakes),
 * per peer uid and in all. They are kept apart from the bound on
 * authenticated clients (maxClients): a peer without the token, however many
 * connections it opens, never takes an authenticated client's place.
 *
 * A handshake is counted from accept until it authenticates or its socket is
 * gone. Connections that failed (a wrong token, a refused uid, a timeout)
 * keep counting while their socket lingers, so failing fast is no way round
 * the bound.
 *
 * Which handshake goes when a uid passes its bound? Refusing the NEW one
 * would let a flooder of the user's own uid hold every place and starve the
 * real client, which connects once and would be the newcomer every time. So
 * the OLDEST goes. A real client sends its Hello with its connect, and it is
 * read and checked the moment it arrives; the risk left is a flood that
 * passes the bound in the instant between a real client's connect and its
 * Hello being read. To close that instant the bound is not applied on accept
 * but one read later ("accept and read before counting"): a connection
 * accepted in one turn of the event loop starts reading in the next turn's
 * poll phase, and only after that poll phase (a second setImmediate hop) is
 * it counted. A Hello that was already there has authenticated and left by
 * then, whatever arrived behind it (applying the bound on accept instead
 * fails the flood tests in test/unit/server/server.test.ts). Between those
 * points a burst is held to a hard bound of HARD_FACTOR times the limits. A
 * client slower than that first read keeps its place until `perUid` newer
 * handshakes of its uid have been counted.
 */

/** A burst accepted before any of it could be read may pass the limits by this factor. */
const HARD_FACTOR = 4;

export interface HandshakeLimits {
  /** Handshakes of one uid counted at once. */
  perUid: number;
  /** Handshakes of all uids counted at once. */
  total: number;
}

interface Entry {
  readonly uid: number;
  readonly drop: () => void;
  counted: boolean;
  gone: boolean;
}

interface UidEntries {
  /** In order of arrival: the first is the oldest. */
  readonly entries: Set<Entry>;
  counted: number;
}

export class HandshakeBounds {
  private readonly byUid = new Map<number, UidEntries>();
  private all = 0;
  private counted = 0;
  private fresh: Entry[] = [];

  constructor(
    private readonly limits: HandshakeLimits,
    /** Told after each handshake the bounds dropped (for logs and metrics). */
    private readonly onDrop: (uid: number) => void,
  ) {}

  /** Handshakes now, counted or not yet. */
  get size(): number {
    return this.all;
  }

  /**
   * Tracks a new connection of `uid`; `drop` ends it at once if the bounds
   * choose it. Returns the release: call it when the connection
   * authenticates or its socket closes (more calls do nothing).
   */
  admit(uid: number, drop: () => void): () => void {
    const entry: Entry = { uid, drop, counted: false, gone: false };
    let u = this.byUid.get(uid);
    if (!u) {
      u = { entries: new Set(), counted: 0 };
      this.byUid.set(uid, u);
    }
    u.entries.add(entry);
    this.all++;
    this.fresh.push(entry);
    if (this.fresh.length === 1) {
      // Hop 1 runs in this turn's check phase, after the accept burst; hop 2
      // in the next turn's, after the poll phase that read these sockets.
      setImmediate(() => {
        const batch = this.fresh;
        this.fresh = [];
        setImmediate(() => this.count(batch));
      });
    }
    this.enforce(
      uid,
      HARD_FACTOR * this.limits.perUid,
      HARD_FACTOR * this.limits.total,
      (x) => x.entries.size,
      () => this.all,
      () => true,
    );
    return () => this.release(entry);
  }

  private release(entry: Entry): void {
    if (entry.gone) return;
    entry.gone = true;
    const u = this.byUid.get(entry.uid)!;
    u.entries.delete(entry);
    this.all--;
    if (entry.counted) {
      u.counted--;
      this.counted--;
    }
    if (u.entries.size === 0) this.byUid.delete(entry.uid);
  }

  private count(batch: readonly Entry[]): void {
    const uids = new Set<number>();
    for (const entry of batch) {
      if (entry.gone) continue;
      entry.counted = true;
      this.byUid.get(entry.uid)!.counted++;
      this.counted++;
      uids.add(entry.uid);
    }
    for (const uid of uids) {
      this.enforce(
        uid,
        this.limits.perUid,
        this.limits.total,
        (x) => x.counted,
        () => this.counted,
        (e) => e.counted,
      );
    }
  }

  /** Drops the oldest eligible handshakes of `uid` while it is over
   * `perUid`, then those of the uid with the most while all are over `total`
   * (a flood from one uid never costs another uid its handshake). */
  private enforce(
    uid: number,
    perUid: number,
    total: number,
    sizeOf: (u: UidEntries) => number,
    sizeOfAll: () => number,
    eligible: (e: Entry) => boolean,
  ): void {
    for (;;) {
      const u = this.byUid.get(uid);
      if (!u || sizeOf(u) <= perUid || !this.dropOldest(u, eligible)) break;
    }
    while (sizeOfAll() > total) {
      let biggest: UidEntries | undefined;
      for (const u of this.byUid.values()) {
        if (!biggest || sizeOf(u) > sizeOf(biggest)) biggest = u;
      }
      if (!biggest || !this.dropOldest(biggest, eligible)) break;
    }
  }

  /** False only if nothing is eligible, which sizeOf rules out (the loops
   * stop rather than spin should that ever be wrong). */
  private dropOldest(u: UidEntries, eligible: (e: Entry) => boolean): boolean {
    for (const entry of u.entries) {
      if (!eligible(entry)) continue;
      this.release(entry);
      this.onDrop(entry.uid);
      entry.drop();
      return true;
    }
    return false;
  }
}

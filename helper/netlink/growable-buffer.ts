/** The byte buffer under the encoders that append messages (NetlinkWriter,
 * nfqueue's VerdictBuffer): it grows by doubling, keeping what it holds. */
export class GrowableBuffer {
  protected buf: Uint8Array;
  protected view: DataView;
  protected len = 0;

  constructor(initialSize: number) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.len;
  }

  /** Appends `n` bytes, left for the caller to fill, and returns their offset. */
  protected reserve(n: number): number {
    const at = this.len;
    const need = at + n;
    if (need > this.buf.length) {
      let size = this.buf.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(size);
      next.set(this.buf.subarray(0, at));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    this.len = need;
    return at;
  }
}

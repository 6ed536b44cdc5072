// OpenAI `stop` sequences on streamed text: the text before the first stop sequence is returned,
// the sequence itself and everything after it are not. While streaming, a tail that could be the
// start of a stop sequence is held back until the next piece decides it.
export class StopMatcher {
  private held = '';
  private stoppedAt = false;

  constructor(private readonly stops: readonly string[]) {}

  get stopped(): boolean { return this.stoppedAt; }

  /** Feeds decoded text; returns the part that is certainly output. */
  push(text: string): string {
    if (this.stoppedAt) return '';
    this.held += text;
    let first = -1;
    for (const s of this.stops) {
      if (s === '') continue;
      const i = this.held.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) first = i;
    }
    if (first >= 0) {
      this.stoppedAt = true;
      const out = this.held.slice(0, first);
      this.held = '';
      return out;
    }
    const keep = this.partialTail();
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return out;
  }

  /** At the end of generation: whatever was held back (it did not become a stop sequence). */
  end(): string {
    const out = this.stoppedAt ? '' : this.held;
    this.held = '';
    return out;
  }

  /** Length of the longest suffix of `held` that is a proper prefix of a stop sequence. */
  private partialTail(): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.held.length); k > best; k--) {
        if (this.held.endsWith(s.slice(0, k))) { best = k; break; }
      }
    }
    return best;
  }
}

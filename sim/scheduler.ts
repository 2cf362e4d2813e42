// A discrete-event scheduler on simulated time. Events at the same time run in the order they
// were scheduled, so a run depends only on its seed.

interface Event {
  readonly atUs: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export interface EventHandle {
  cancel(): void;
}

export class Scheduler {
  private heap: Event[] = [];
  private seq = 0;
  /** Simulated global time in microseconds (integers keep runs exact). */
  nowUs = 0;
  eventsRun = 0;

  get nowMs(): number {
    return this.nowUs / 1000;
  }

  at(atUs: number, fn: () => void): EventHandle {
    const ev: Event = { atUs: Math.max(Math.round(atUs), this.nowUs), seq: this.seq++, fn, cancelled: false };
    this.push(ev);
    return {
      cancel: () => {
        ev.cancelled = true;
      },
    };
  }

  after(delayUs: number, fn: () => void): EventHandle {
    return this.at(this.nowUs + delayUs, fn);
  }

  /** Runs events until `untilUs` or until `stop()` returns true after an event. */
  runUntil(untilUs: number, afterEach?: () => boolean): void {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      if (top.atUs > untilUs) break;
      this.pop();
      if (top.cancelled) continue;
      this.nowUs = top.atUs;
      this.eventsRun++;
      top.fn();
      if (afterEach && afterEach()) return;
    }
    this.nowUs = Math.max(this.nowUs, untilUs);
  }

  private less(a: Event, b: Event): boolean {
    return a.atUs < b.atUs || (a.atUs === b.atUs && a.seq < b.seq);
  }

  private push(ev: Event): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
      if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
      if (m === i) break;
      [h[i], h[m]] = [h[m]!, h[i]!];
      i = m;
    }
  }
}

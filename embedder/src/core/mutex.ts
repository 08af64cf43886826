/** A FIFO async mutex: `run` calls execute one at a time, in call order. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private pending = 0;

  /** Calls running or waiting. */
  get size(): number {
    return this.pending;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.pending++;
    try {
      await previous;
      return await fn();
    } finally {
      this.pending--;
      release();
    }
  }
}

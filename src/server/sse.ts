// Server-sent events as the OpenAI streaming API sends them: `data: <json>\n\n` per chunk and a
// final `data: [DONE]`. The response head is written with the first event, so a request that
// fails before producing anything still gets a proper status code and JSON error body.
import type { ServerResponse } from 'node:http';

export class SseStream {
  private started = false;

  constructor(private readonly res: ServerResponse, private readonly headers: Record<string, string> = {}) {}

  get isStarted(): boolean { return this.started; }

  /** Sends one event; resolves once the socket has taken it (back-pressure from slow clients). */
  send(data: unknown): Promise<void> {
    this.start();
    return this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  /** The terminating `data: [DONE]` event, then the end of the response. */
  async done(): Promise<void> {
    this.start();
    await this.write('data: [DONE]\n\n');
    this.res.end();
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
      ...this.headers,
    });
    this.res.flushHeaders();
  }

  private write(s: string): Promise<void> {
    if (this.res.destroyed || this.res.writableEnded) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.res.write(s)) resolve();
      else {
        const done = () => { this.res.off('drain', done); this.res.off('close', done); resolve(); };
        this.res.on('drain', done);
        this.res.on('close', done);
      }
    });
  }
}

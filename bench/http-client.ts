// A keep-alive HTTP client for the load generators: one agent shared by all workers, a hard
// deadline on every request, and no exceptions for HTTP errors (the caller reads the status).
import http from 'node:http';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface Reply {
  readonly status: number;
  readonly text: string;
}

export class HttpClient {
  private readonly agent: http.Agent;

  /** socketsMax bounds the open connections per endpoint (one per concurrent worker). */
  constructor(socketsMax: number) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: socketsMax, maxFreeSockets: socketsMax });
  }

  /** Rejects on transport failure or when no response arrived within timeoutMs. */
  request(
    to: Endpoint,
    method: string,
    path: string,
    body: Buffer | undefined,
    timeoutMs: number,
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: to.host,
          port: to.port,
          method,
          path,
          agent: this.agent,
          headers: body ? { 'content-type': 'application/json', 'content-length': body.length } : undefined,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
          });
          res.on('error', (err) => {
            clearTimeout(timer);
            reject(err);
          });
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

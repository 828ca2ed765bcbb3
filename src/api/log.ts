/**
 * The server's log: JSON lines, one per request (the access log) and one per unexpected
 * error. They carry the route's pattern (never the URL, so never a query string), the status,
 * the duration and who called (a key id, a digest of a token's subject, a webhook source):
 * never a body, a header, a token or an email. An unexpected error is logged by its name; Temporal's
 * own errors also by their message (about ids, namespaces and settings; payloads are encrypted).
 */
export type LogEntry =
  | {
      kind: 'access';
      time: string;
      request: string;
      method: string;
      route: string | null;
      status: number;
      ms: number;
      caller?: string;
    }
  | { kind: 'error'; time: string; request: string; route: string | null; error: string; detail?: string };

export type ApiLogger = (entry: LogEntry) => void;

/** One JSON object a line, to stdout by default. */
export function jsonLines(write: (line: string) => void = (l) => process.stdout.write(l)): ApiLogger {
  return (entry) => write(`${JSON.stringify(entry)}\n`);
}

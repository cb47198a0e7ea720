/** What the router knows of a request: its head, parsed, and where it came from. */
export interface RequestHead {
  method: string;
  /** The request target as sent, e.g. "/path?version=v2". */
  target: string;
  /** Lower-cased header names; repeated headers joined with ", " (cookies with "; "). */
  headers: Record<string, string>;
  remoteAddress: string;
}

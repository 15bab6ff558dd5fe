/** The messages between the scenario and its load-generator processes (over the IPC channel). */

export interface UserCredentials {
  username: string;
  token: string;
}

export type LoadCommand =
  | { cmd: 'init'; protocol: string; baseUrl: string; org: string; app: string }
  /** Logs the users in, `concurrency` logins at a time, giving up on the rest at `deadlineMs` from now. */
  | { cmd: 'connect'; users: UserCredentials[]; concurrency: number; loginTimeoutMs: number; deadlineMs: number }
  /** Closed loop: every logged-in client keeps `inFlight` sends to random peers of this process outstanding. */
  | { cmd: 'blast'; warmupSeconds: number; seconds: number; inFlight: number; ackTimeoutMs: number }
  /** Open loop: `rate` sends per second from random clients to random peers of this process. */
  | { cmd: 'paced'; warmupSeconds: number; seconds: number; rate: number; ackTimeoutMs: number }
  /** One message from one client to another; answers the time until the recipient had it. */
  | { cmd: 'probe'; from: string; to: string; timeoutMs: number }
  | { cmd: 'close-all'; concurrency: number; timeoutMs: number }
  | { cmd: 'exit' };

export interface ConnectResult {
  connected: number;
  failed: number;
  firstError: string | null;
  seconds: number;
  /** Logged-in clients of this process after the batch. */
  ready: number;
}

/** Counts of a measured window (warm-up excluded) and what was still missing after the drain. */
export interface TrafficResult {
  seconds: number;
  sent: number;
  acked: number;
  /** Messages of the window received by their recipients. */
  delivered: number;
  errors: number;
  firstError: string | null;
  /** Sent in the window, acked, but not received after the drain. */
  undelivered: number;
  /** Send (frame written) → recipient received, ms, for messages sent in the window. */
  latenciesMs: number[];
  /** The second of the window each of `latenciesMs` was sent in. */
  latencySeconds: number[];
  /** Send → server ack, ms. */
  ackLatenciesMs: number[];
}

export interface ProbeResult {
  ms: number;
}

export type LoadReply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export interface LoadRequest {
  id: number;
  command: LoadCommand;
}

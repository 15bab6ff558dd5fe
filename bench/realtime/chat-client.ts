/**
 * What the real-time load generator needs from a client protocol, and nothing more: log in, send
 * a text and learn when the server stored it, hear messages. The XMPP dialect and the JSON
 * protocol implement it, each as a `ChatProtocol` the scenario picks by name.
 */

/** A message as the recipient's socket received it. */
export interface IncomingChat {
  /** The server's message id (msg_id). */
  id: string;
  /** Sender user name. */
  from: string;
  /** The text of the first body (`bodies[0].msg`). */
  text: string;
  /** `performance.now()` when the frame arrived, before it was parsed. */
  receivedAt: number;
}

/** The stored message's server id and when the server's ack arrived. */
export interface SendAck {
  id: string;
  /** `performance.now()` just after the send frame was handed to the socket. */
  sentAt: number;
  ackedAt: number;
}

export interface ChatClient {
  readonly username: string;
  /** Opens the socket and logs in; resolves once the server delivers messages to this client. */
  connect(timeoutMs: number): Promise<void>;
  /** Sends a text to a user; resolves when the server acknowledged it as stored, rejects on an error reply or timeout. */
  send(to: string, text: string, timeoutMs: number): Promise<SendAck>;
  /** Sets the one handler for incoming messages; the client acknowledges them to the server itself. */
  onMessage(handler: (m: IncomingChat) => void): void;
  /** Messages sent and not yet acknowledged. */
  readonly inFlight: number;
  /** Whether the socket is open and logged in. */
  readonly ready: boolean;
  /** Closes the session politely and resolves when the socket is closed (or after `timeoutMs`). */
  close(timeoutMs: number): Promise<void>;
}

/** Where and as whom a client logs in. */
export interface ClientOptions {
  /** The server's base URL (http://127.0.0.1:port); the protocol picks its path. */
  baseUrl: string;
  org: string;
  app: string;
  username: string;
  /** A REST user token. */
  token: string;
}

/** A protocol the load generator can drive. */
export interface ChatProtocol {
  readonly name: string;
  create(opts: ClientOptions): ChatClient;
}

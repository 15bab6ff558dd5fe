/*
 * The few WebSocket members the client uses, declared here so that it compiles without the DOM
 * types and accepts both the browser's WebSocket and the `ws` package's (Node 20 has no global one).
 */

/** A `message` event: `data` is a string for text frames in browsers and in `ws`. */
export interface MessageEventLike {
  readonly data: unknown;
}

/** A `close` event. */
export interface CloseEventLike {
  readonly code: number;
  readonly reason: string;
}

/** A WebSocket, as far as the client needs one. */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (ev: MessageEventLike) => void): void;
  addEventListener(type: 'close', listener: (ev: CloseEventLike) => void): void;
  addEventListener(type: 'open' | 'error', listener: () => void): void;
}

/** `WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** WebSocket.OPEN, the same in every implementation. */
export const OPEN = 1;

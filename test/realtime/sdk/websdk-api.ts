/**
 * What the tests use of the historical Easemob web SDK (npm `easemob-websdk` 1.4.x), typed: the
 * bundles are untyped browser code, and only what is written here is relied on.
 */

/** The SDK versions under test: 1.4.15 is the last 1.4.x (extra bind children), 1.4.6 the first on npm. */
export const SDK_VERSIONS = ['1.4.15', '1.4.6'] as const;
export type SdkVersion = (typeof SDK_VERSIONS)[number];

/** `WebIM.statusCode` values the tests branch on (the same numbers in both versions). */
export const SDK_CODE = {
  /** The REST token request failed (a wrong password when logging in with `pwd`). */
  OPEN_ERROR: 1,
  /** SASL said not-authorized (a wrong token). */
  AUTH_ERROR: 2,
  /** A stream error (Strophe ERROR), e.g. conflict. */
  SERVER_ERROR: 8,
} as const;

export interface SdkConnectionOptions {
  url: string;
  apiUrl: string;
  isAutoLogin: boolean;
  isMultiLoginSessions: boolean;
  autoReconnectNumMax: number;
  heartBeatWait: number;
}

export interface SdkOpenOptions {
  user: string;
  appKey: string;
  apiUrl: string;
  accessToken?: string;
  pwd?: string;
}

/** What `onTextMessage` hands the app. */
export interface SdkTextMessage {
  /** The server message id (the stanza `id`). */
  id: string;
  /** `chat`, `groupchat` or `chatroom`. */
  type: string;
  from: string;
  to: string;
  data: string;
  /** The `<delay stamp>` of a message stored while the user was offline. */
  delay?: string;
  ext: Record<string, unknown>;
  error: boolean;
  errorCode: string;
  errorText: string;
}

/** What `onError` hands the app. */
export interface SdkError {
  type: number;
  msg?: string;
  conflict?: boolean;
  reconnect?: boolean;
  data?: unknown;
}

/** What `onPresence` hands the app (only the fields read here; the SDK adds more per kind). */
export interface SdkPresence {
  type?: string;
  from?: string;
  to?: string;
  status?: string;
  [key: string]: unknown;
}

/** A server ack (spec §6 shape A) as the app sees it: client id and the server's msg_id. */
export interface ServerAck {
  id: string;
  mid: string;
}

/** A function made in the window's realm (see `SdkWindow.inWindow`). */
export type WindowFunction = (...args: unknown[]) => void;

export interface SdkTextSetOptions {
  msg: string;
  to: string;
  roomType?: boolean;
  success: WindowFunction;
  fail: WindowFunction;
}

export interface SdkMessage {
  id: string;
  body: object;
  set(options: SdkTextSetOptions): void;
  setGroup(group: 'groupchat'): void;
}

export interface SdkHandlers {
  onOpened: () => void;
  onClosed: () => void;
  onTextMessage: (m: SdkTextMessage) => void;
  onPresence: (p: SdkPresence) => void;
  onReceivedMessage: (m: unknown) => void;
  onError: (e: SdkError) => void;
}

export interface SdkConnection {
  listen(handlers: SdkHandlers): void;
  open(options: SdkOpenOptions): void;
  send(body: object): void;
  close(reason?: string): void;
  getUniqueId(prefix?: string): string;
  isOpened(): boolean;
}

/** The `WebIM` global the bundle defines. */
export interface WebIm {
  connection: new (options: SdkConnectionOptions) => SdkConnection;
  message: new (type: 'txt', id: string) => SdkMessage;
}

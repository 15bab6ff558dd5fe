// `chatvault/client`: the TypeScript client of the JSON protocol (docs/realtime.md), for browsers and Node 20.
export { ChatClient, PROTOCOL, type ChatClientOptions, type LoginCredentials, type SendInput } from './chat-client.js';
export {
  ChatError, type ChatEvents, type ChatMessage, type ConnectionState, type ContactChange, type MessageBody, type Presence, type Receipt, type SendAck, type TargetType,
} from './chat-types.js';
export type { WebSocketConstructor, WebSocketLike } from './web-socket-like.js';

// TypeScript declarations of the browser API of drupal-push: Drupal.Nodejs as our shim
// (drupal-push.js) provides it, with the module's registries and drupal-push's listeners, and
// the global `io` facade (socket.io.js) the nodejs module's own nodejs.js talks to.
//
// Use: copy this file next to your theme's scripts (or reference it from dist/) and add
//   /// <reference path="drupal-push.d.ts" />
// A test type-checks drupal-js/types-example.ts against it with `tsc --noEmit`.

declare namespace DrupalPush {
  /** A message as Drupal published it (the body posted to /nodejs/publish), verbatim. */
  interface Message {
    /** Names of `Drupal.Nodejs.callbacks` entries to run (a single name becomes an array). */
    callback?: string | string[];
    /** The channel Drupal published to (a member of the message, as Drupal sent it). */
    channel?: string;
    /** `true` for a message Drupal sent to everyone. */
    broadcast?: boolean;
    /** Socket id of the page whose AJAX request caused the message: that page skips it. */
    clientSocketId?: string;
    /** Set by the server on messages another page published to a client-writable channel. */
    senderUid?: number;
    senderSocketId?: string;
    presenceNotification?: {uid: number; event: 'online' | 'offline'};
    contentChannelNotification?: boolean;
    data?: any;
    [member: string]: any;
  }

  /** What the envelope of a message says about it. */
  interface Meta {
    /** The channel it was delivered on; `null` for a broadcast. */
    channel: string | null;
    /** The recorded stream it belongs to, when the server keeps a history: the channel,
     * `token:<channel>` for a content-token channel, `*` for broadcasts. */
    stream?: string;
    /** Its position in that stream's history (offsets count within an epoch). */
    offset?: number;
    epoch?: string;
  }

  /** An entry of `callbacks`, `presenceCallbacks`, `contentChannelNotificationCallbacks`. */
  interface Callback {
    callback(this: Callback, message: Message): void;
  }

  /** An entry of `channelCallbacks` and `broadcastCallbacks`. */
  interface ListenerEntry {
    callback(this: ListenerEntry, message: Message, meta: Meta): void;
  }

  interface SetupHandler {
    connect?(): void;
    disconnect?(): void;
    connectionFailure?(): void;
    /** After a reconnect: the channels (content-token channels by name, broadcasts as `*`)
     * whose missed messages could not be recovered; reload their state. */
    recoveryFailed?(channels: string[]): void;
  }

  /** The outcome of the last reconnect's recovery, by channel name. */
  interface Recovery {
    recovered: string[];
    failed: string[];
  }

  /** Why a request failed: the server's error code, or `not-connected`, `connection-lost`, `timeout`. */
  interface RequestError {
    code: string;
    message: string;
  }

  type RequestCallback<T> = (error: RequestError | null, result?: T) => void;

  /** The state shown on the socket and in `drupal-push:status` events. */
  interface Status {
    state: 'idle' | 'connecting' | 'authenticating' | 'connected' | 'waiting' | 'stopped';
    socketId: string | null;
    uid: number | null;
    attempts: number;
    lastClose: number | null;
    retryInMs: number | null;
    /** Since the first reconnect: what it recovered (null before). */
    recovery: Recovery | null;
  }

  /** The socket: `Drupal.Nodejs.socket`, and what `io()` returns. */
  interface Socket {
    connected: boolean;
    disconnected: boolean;
    id?: string;
    sessionid?: string;
    /** socket.io 0.9's names, read by the module's Drupal.ajax patch (Drupal 7 and 8+). */
    socket: {sessionid?: string; connected: boolean};
    state?: Status['state'];
    status?: Status;
    on(event: 'connect' | 'reconnect', fn: () => void): Socket;
    on(event: 'disconnect', fn: (reason: string) => void): Socket;
    on(event: 'connect_error', fn: (error: Error) => void): Socket;
    on(event: 'message', fn: (message: Message) => void): Socket;
    off(event: string, fn: (...args: any[]) => void): Socket;
    emit(event: 'authenticate', data: {authToken: string; contentTokens?: Record<string, string> | []}, ack?: (answer: {result: 'success'}) => void): Socket;
    emit(event: 'join-token-channel', data: {channel: string; contentToken: string}): Socket;
    /** A message for Drupal; `ack` gets Drupal's answer, or `{error, code}`. */
    emit(event: 'message', data: Record<string, any>, ack?: (answer: any) => void): Socket;
    connect(): Socket;
    disconnect(): Socket;
  }

  interface Nodejs {
    callbacks: Record<string, Callback>;
    presenceCallbacks: Record<string, Callback>;
    contentChannelNotificationCallbacks: Record<string, Callback>;
    connectionSetupHandlers: Record<string, SetupHandler>;
    /** Keys: a channel name, or a prefix ending in `*` (`chat_*`). Run for every message on a matching channel, after the module's callbacks. */
    channelCallbacks: Record<string, ListenerEntry | ListenerEntry[]>;
    /** Run for every broadcast (a message Drupal sent to everyone), after the module's callbacks. */
    broadcastCallbacks: ListenerEntry[];
    socket: Socket | false;
    /** Registers fn for a channel name or `prefix*` pattern; returns a function that unregisters it. */
    onChannel(pattern: string, fn: (message: Message, meta: Meta) => void): () => void;
    /** Registers fn for broadcasts; returns a function that unregisters it. */
    onBroadcast(fn: (message: Message, meta: Meta) => void): () => void;
    connect(): boolean | void;
    runCallbacks(message: Message): void;
    runSetupHandlers(type: 'connect' | 'disconnect' | 'connectionFailure' | 'recoveryFailed'): void;
    sendAuthMessage(): void;
    joinTokenChannel(channel: string, contentToken: string): void;
    checkConnection(): boolean | void;
    /** A message for Drupal (its `messageType`, else `type`, names the handler); needs the server's `clientMessages`. */
    sendMessage(message: Record<string, any>, callback?: RequestCallback<any>): void;
    /** A message for the other members of a client-writable channel (server `clientWritableChannels`);
     * its `callback` may name only the server's `clientPublishCallbacks`, and it may not carry
     * `presenceNotification`, `contentChannelNotification` or `clientSocketId`. */
    publish(channel: string, message: Record<string, any>, options?: {echo?: boolean}, callback?: RequestCallback<{sent: number}>): void;
    publish(channel: string, message: Record<string, any>, callback: RequestCallback<{sent: number}>): void;
    status(): Status | null;
    /** Settles once the wasm client is loaded. */
    loaded: Promise<void>;
  }

  interface IoOptions {
    'connect timeout'?: number;
    timeout?: number;
    [option: string]: any;
  }

  interface Io {
    (url?: string, options?: IoOptions): Socket;
    connect(url?: string, options?: IoOptions): Socket;
  }
}

declare var io: DrupalPush.Io;

declare var Drupal: {
  Nodejs: DrupalPush.Nodejs;
  behaviors: Record<string, {attach?(context: any, settings: any): void; detach?(context: any, settings: any, trigger: string): void}>;
  [member: string]: any;
};

interface WindowEventMap {
  'drupal-push:status': CustomEvent<DrupalPush.Status>;
}

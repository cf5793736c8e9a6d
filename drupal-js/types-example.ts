// Type-checked against drupal-push.d.ts by tests/browser/run.sh (tsc --noEmit): what a theme
// developer writes with the declarations, including calls that must be rejected.
/// <reference path="drupal-push.d.ts" />

const unregister: () => void = Drupal.Nodejs.onChannel('chat_*', (message, meta) => {
  const room: string | null = meta.channel;
  const from: number | undefined = message.senderUid;
  console.log(room, from, meta.offset, message.data);
});
unregister();

Drupal.Nodejs.onBroadcast((message) => console.log(message.broadcast === true));
Drupal.Nodejs.channelCallbacks['chat_42'] = {callback(message, meta) { console.log(message.callback, meta.channel); }};
Drupal.Nodejs.callbacks.myModule = {callback(message) { console.log(message.data); }};
Drupal.Nodejs.connectionSetupHandlers.myModule = {connect() {}, connectionFailure() {},
  recoveryFailed(channels) { console.log(channels.includes('chat_42')); }};

Drupal.Nodejs.sendMessage({messageType: 'chatMessage', text: 'hi'}, (error, result) => {
  if (error) {
    const code: string = error.code;
    console.log(code, error.message);
  }
  console.log(result);
});
Drupal.Nodejs.publish('chat_42', {text: 'hi'}, {echo: true}, (error, result) => console.log(error, result && result.sent));
Drupal.Nodejs.publish('chat_42', {text: 'hi'}, (error, result) => console.log(error, result?.sent));

const socket = io.connect('https://push.example.com:8080', {'connect timeout': 5000});
socket.on('connect', () => socket.emit('authenticate', {authToken: 't', contentTokens: {}}));
socket.on('message', (message) => Drupal.Nodejs.runCallbacks(message));
socket.on('disconnect', (reason: string) => console.log(reason));
socket.emit('message', {type: 'x'}, (answer) => console.log(answer));
const id: string | undefined = socket.socket.sessionid;
console.log(id);

window.addEventListener('drupal-push:status', (event) => {
  const state: DrupalPush.Status['state'] = event.detail.state;
  console.log(state, event.detail.retryInMs, event.detail.recovery?.failed.length);
});

// @ts-expect-error: onChannel takes a pattern and a function
Drupal.Nodejs.onChannel(42, () => {});
// @ts-expect-error: publish needs a channel name
Drupal.Nodejs.publish({text: 'hi'});
// @ts-expect-error: meta.channel is not a number
const wrong: number = (null as unknown as DrupalPush.Meta).channel;
console.log(wrong);

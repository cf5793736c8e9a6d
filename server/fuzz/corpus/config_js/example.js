/**
 * Example configuration of the Node.js server.
 */
settings = {
  scheme: 'http',
  port: 8080,
  host: 'localhost',
  resource: '/socket.io',
  serviceKey: 'k3y', // the shared secret
  backend: {
    port: 80,
    host: 'drupal.example.org',
    scheme: 'http',
    basePath: '',
    messagePath: '/nodejs/message',
    strictSSL: false,
    httpAuth: 'user:pass',
  },
  debug: false,
  publishUrl: 'publish',
  extensions: [],
  transports: ['websocket', 'xhr-polling'],
  bodyParserJsonLimit: "512kb",
  contentTokenStatus: "ok",
  maxQueuedBytes: '16mb',
  jsEtag: true,
  logLevel: 1
};

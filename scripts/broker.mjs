// Starts a private throwaway RabbitMQ node for manual testing and prints its URL; Ctrl-C
// (or SIGTERM) stops it and removes its data. It never touches the system broker.
//
//   node scripts/broker.mjs [--port 5673]
//   AMQP_URL=<printed url> npm run demo
import { setInterval } from 'node:timers';
import { tsImport } from 'tsx/esm/api';

const portIndex = process.argv.indexOf('--port');
const amqpPort = portIndex > 0 ? Number(process.argv[portIndex + 1]) : undefined;
if (amqpPort !== undefined && !(Number.isInteger(amqpPort) && amqpPort > 0 && amqpPort < 65536)) {
  console.error('usage: node scripts/broker.mjs [--port N]');
  process.exit(2);
}

const { startPrivateBroker } = await tsImport('../src/testing/index.ts', import.meta.url);
const broker = await startPrivateBroker(amqpPort === undefined ? {} : { amqpPort });
console.log(`private RabbitMQ node ${broker.nodeName} ready in ${broker.startupMs} ms`);
console.log(`  export AMQP_URL=${broker.url}`);
console.log(`  logs: ${broker.logFile}`);
console.log('Ctrl-C stops it.');

let closing = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    if (closing) return;
    closing = true;
    void broker.close().then(() => process.exit(0));
  });
}
// Keep the process alive until a signal arrives.
setInterval(() => undefined, 1 << 30);

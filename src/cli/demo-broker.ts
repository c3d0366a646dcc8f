import type { RpcConnection } from '../index.js';
import { connect, RpcError } from '../index.js';
import { textOf } from '../errors.js';
import { redactUrl } from './output.js';

/** The broker the demo runs on, and how to let go of it. */
export interface DemoBroker {
  readonly rpc: RpcConnection;
  /** One line for the top of the demo: which broker this is. */
  readonly kind: 'given' | 'private' | 'memory';
  /** Closes the connection, then stops the broker the demo started, if any. */
  close(): Promise<void>;
}

const GET_A_BROKER =
  'For a real one: `sudo apt-get install -y rabbitmq-server && sudo rabbitmq-server -detached` ' +
  '(or `docker run -d -p 5672:5672 rabbitmq:3`), then run the demo again, or point AMQP_URL ' +
  'at one.';

/**
 * The demo works on any machine: the broker at `url` when one answers; else a private
 * RabbitMQ node started for the demo when rabbitmq-server is installed (as `npm test`
 * does); else rabbit-rpc's in-memory broker, said plainly. A broker that answers but
 * refuses (a wrong password, no such vhost) is an error, not a reason to go elsewhere:
 * the RpcError is thrown for the caller to report.
 *
 * @param say writes one line of the demo's story (stdout)
 */
export async function openDemoBroker(
  url: string,
  say: (line: string) => void,
): Promise<DemoBroker> {
  const options = { connectionName: 'rabbit-rpc demo', reconnect: false } as const;
  let unreachable: RpcError;
  try {
    const rpc = await connect({ url, ...options });
    return { rpc, kind: 'given', close: () => rpc.close() };
  } catch (thrown) {
    unreachable = RpcError.from(thrown, 'UNAVAILABLE');
    if (unreachable.code !== 'UNAVAILABLE') throw unreachable;
  }
  say(`No RabbitMQ answered at ${redactUrl(url)} (${unreachable.message}).`);
  // Loaded only now: most runs never need the test harness.
  const testing = await import('../testing/index.js');
  try {
    say(
      'Trying to start a private RabbitMQ node for this demo (a few seconds, if RabbitMQ is installed)...',
    );
    const broker = await testing.startPrivateBroker();
    say(
      `Started a private RabbitMQ node at ${redactUrl(broker.url)} in ${(broker.startupMs / 1000).toFixed(1)} s ` +
        '(its own port and folder; it is stopped and removed when the demo ends).',
    );
    try {
      const rpc = await connect({ url: broker.url, ...options });
      return {
        rpc,
        kind: 'private',
        close: async () => {
          await rpc.close();
          await broker.close();
        },
      };
    } catch (error) {
      await broker.close();
      throw error;
    }
  } catch (error) {
    if (error instanceof RpcError) throw error;
    const why =
      error instanceof testing.PrivateBrokerError && error.code === 'NOT_INSTALLED'
        ? 'RabbitMQ is not installed here'
        : `the private node did not start (${textOf(error)})`;
    say(
      `Not possible: ${why}. So this demo runs on rabbit-rpc's in-memory broker (MemoryBroker from ` +
        'rabbit-rpc/testing), inside this process: the library above the AMQP connection is the ' +
        "real one, but no RabbitMQ is involved and the latencies are not a broker's.",
    );
    say(GET_A_BROKER);
    const memory = new testing.MemoryBroker();
    const rpc = await connect({ url: 'amqp://memory', transport: memory.transport, ...options });
    return {
      rpc,
      kind: 'memory',
      close: async () => {
        await rpc.close();
        await memory.close();
      },
    };
  }
}

/** The options of {@link startPrivateBroker} and {@link startPrivateCluster}, and their names. */
import { optionNames } from '../option-names.js';

/** Options of {@link startPrivateBroker}. */
export interface PrivateBrokerOptions {
  /** AMQP port on 127.0.0.1. @default a free port picked by the OS */
  amqpPort?: number;
  /** Node name before `@localhost`. @default `rpc` plus random hex */
  name?: string;
  /**
   * Folder in which the broker's own temporary folder (data, logs, cookie) is created;
   * `close()` removes that temporary folder. @default os.tmpdir()
   */
  baseDir?: string;
  /** Extra `rabbitmq.conf` lines (new-style sysctl format), appended to the harness's own. */
  config?: string;
  /** How long the node may take to boot and answer AMQP. @default 90000 */
  startTimeoutMs?: number;
  /**
   * Also listen for AMQP over TLS on another free port of 127.0.0.1, with a throwaway CA
   * and a server certificate for `localhost` and `127.0.0.1` (made with `openssl`). The
   * broker then has `amqpsUrl`, `tlsPort` and `caPem` (trust it with `tls: { ca }`).
   * @default false
   */
  tls?: boolean;
  /**
   * Folder holding the real `rabbitmq-server` and `rabbitmqctl` scripts (not the `/usr/sbin`
   * wrappers, which switch to the system user and cookie). With `chroot`, a path inside
   * the root.
   * @default process.env.RABBITMQ_BIN_DIR, else '/usr/lib/rabbitmq/bin' (Debian, Ubuntu)
   */
  rabbitmqBinDir?: string;
  /**
   * A root file system holding another RabbitMQ installation, for example RabbitMQ 4.x from
   * Debian 13 built by `scripts/rabbitmq4.sh` (`/var/lib/rabbit-rpc/rabbitmq4-root`) on a
   * machine whose own libc cannot run it. The node, its epmd and `rabbitmqctl` then run in
   * it with `chroot` (which needs root), the broker's folder is made inside it (`baseDir`
   * is a path inside the root, default `/tmp`), and the node reads the root's
   * `/etc/rabbitmq/conf.d/*.conf` (where `scripts/rabbitmq4.sh` puts RabbitMQ 4.3's
   * defaults). Clients connect from outside as usual. An empty string means none.
   * @default process.env.RABBITMQ_CHROOT
   */
  chroot?: string;
}

/** Options of {@link startPrivateCluster}. */
export type PrivateClusterOptions = Omit<PrivateBrokerOptions, 'amqpPort' | 'name' | 'tls'>;

const CLUSTER_OPTION_NAMES_LIST = {
  baseDir: true,
  config: true,
  startTimeoutMs: true,
  rabbitmqBinDir: true,
  chroot: true,
} satisfies Record<keyof PrivateClusterOptions, true>;
export const CLUSTER_OPTION_NAMES = optionNames(CLUSTER_OPTION_NAMES_LIST);
export const BROKER_OPTION_NAMES = optionNames({
  ...CLUSTER_OPTION_NAMES_LIST,
  amqpPort: true,
  name: true,
  tls: true,
} satisfies Record<keyof PrivateBrokerOptions, true>);

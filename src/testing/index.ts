/**
 * rabbit-rpc/testing: tools for integration and fault tests against a real RabbitMQ.
 *
 * - {@link startPrivateBroker}: a throwaway RabbitMQ node on its own ports and folder,
 *   which tests may stop, kill, freeze, restart, or use to close every connection.
 * - {@link startPrivateCluster}: several such nodes clustered together.
 * - {@link FaultProxy}: an in-process TCP proxy that passes, black-holes, resets, delays
 *   or refuses connections on demand.
 * - {@link MemoryBroker}: an AMQP broker in memory, for unit tests without RabbitMQ.
 *
 * The first three need `rabbitmq-server` installed (Debian/Ubuntu: `apt-get install
 * rabbitmq-server`; the system service need not run). docs/testing.md has examples.
 * @packageDocumentation
 */
export { startPrivateBroker, PrivateBroker } from './private-broker.js';
export type { PrivateBrokerState } from './private-broker.js';
export { startPrivateCluster, PrivateCluster } from './private-cluster.js';
export { PrivateBrokerError } from './broker-error.js';
export type { PrivateBrokerErrorCode } from './broker-error.js';
export type { PrivateBrokerOptions, PrivateClusterOptions } from './broker-options.js';
export { FaultProxy } from './fault-proxy.js';
export type { FaultMode, FaultProxyOptions, FaultProxyTarget } from './fault-proxy.js';
export { freePort, amqpAnswers } from './ports.js';
export { createTestCertificates } from './tls.js';
export type { TestCertificates } from './tls.js';
export { MemoryBroker } from './memory-broker.js';
export type { MemoryQueueInfo } from './memory-broker.js';

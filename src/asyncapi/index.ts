/**
 * `rabbit-rpc/asyncapi`: an AsyncAPI 3.0 document from service contracts or from the
 * services found on a broker (docs/guides/discovery.md).
 */
export { toAsyncApi } from './document.js';
export type { AsyncApiDocument, AsyncApiOptions, AsyncApiSource } from './document.js';

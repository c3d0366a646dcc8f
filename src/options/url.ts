/** Broker URLs: the default, the check, and the redacted form that errors and logs show. */
import { invalid } from './validate.js';

export const DEFAULT_URL = 'amqp://guest:guest@localhost:5672';

/**
 * Throws INVALID_ARGUMENT unless `url` is an `amqp://` or `amqps://` URL. `label` names
 * where it came from (`url`, `AMQP_URL`, `--url`), so that the message says what to fix.
 */
export function checkUrl(url: unknown, label = 'url'): asserts url is string {
  if (typeof url !== 'string') invalid(`${label} must be a string; got ${typeof url}`);
  const example = 'amqp://user:password@host:5672/vhost';
  if (url.trim() === '') {
    invalid(
      `${label} is empty: give a broker URL such as ${example}` +
        (label === 'AMQP_URL' ? `, or unset AMQP_URL to use ${redactUrl(DEFAULT_URL)}` : ''),
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Most often a user name or password with a '/', '?', '#' or '@' of its own.
    invalid(
      `${label} is not a valid URL: "${redactUrl(url)}"; expected ${example} (percent-encode special characters in the user name and password: encodeURIComponent)`,
    );
  }
  if (parsed.protocol !== 'amqp:' && parsed.protocol !== 'amqps:') {
    invalid(`${label} must start with amqp:// or amqps://; got "${redactUrl(url)}"`);
  }
  // An '@' after the host means the user information was cut short by an unencoded '/',
  // '?' or '#' (`amqp://user:12/34@host` parses as the host "user" and the vhost "34@host"):
  // connecting would send the password's tail to the broker as a vhost name, and show it
  // in every error about the connection.
  if (`${parsed.pathname}${parsed.search}${parsed.hash}`.includes('@')) {
    invalid(
      `${label} has an '@' after the host: ${redactUrl(url)} (percent-encode '/', '?', '#' and '@' in the user name, password and vhost: encodeURIComponent)`,
    );
  }
}

/**
 * The URL with its password replaced by `***`, safe for errors, logs and `--verbose`.
 * Read from the text, not from a URL parser: a password with an unencoded `/`, `?` or `#`
 * does not parse as a password (`amqp://user:12/34@host` is the host `user`, port 12 and
 * the vhost `34@host`), and a parser would leave it in plain sight. So everything between
 * `://` and the last `@` is hidden, except a user name that is plainly one.
 */
export function redactUrl(url: string): string {
  const at = url.lastIndexOf('@');
  if (at === -1) return url; // no user information
  const scheme = url.indexOf('://');
  const start = scheme === -1 || scheme > at ? 0 : scheme + 3;
  const userInfo = url.slice(start, at);
  const colon = userInfo.indexOf(':');
  const user = colon === -1 ? userInfo : userInfo.slice(0, colon);
  const shown = /[/?#\\]/.test(user) ? '***' : colon === -1 ? user : `${user}:***`;
  return `${url.slice(0, start)}${shown}@${url.slice(at + 1)}`;
}

/** The user @cloudamqp/amqp-client logs in as for `url`: its user name, else `guest`. */
export function loginOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).username) || 'guest';
  } catch {
    invalid(`url has a malformed user name: ${redactUrl(url)}`);
  }
}

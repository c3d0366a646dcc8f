/**
 * Passwords never reach the CLI's output, whatever the URL looks like: a password with an
 * unencoded '/' either does not parse or parses as a host, port and vhost (issue 13,
 * defect 6). Nothing here needs a broker: every URL fails before or at connect.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { HOSTILE_URLS } from '../hostile-urls.js';
import { requireBuiltCli, runCli } from './child.js';

before(() => requireBuiltCli());

describe('the CLI never prints a password', () => {
  for (const [what, url] of HOSTILE_URLS) {
    test(`call --verbose, a password with ${what}`, async () => {
      const result = await runCli([
        'call',
        'q',
        '1',
        '--verbose',
        '--timeout-ms',
        '2000',
        '--url',
        url,
      ]);
      assert.notEqual(result.code, 0);
      const output = result.stdout + result.stderr;
      assert.doesNotMatch(output, /Secret|Sup3r/, output);
      assert.match(output, /guest|\*\*\*/, 'the output still says which URL failed');
    });
  }
});

/** URLs whose password (Sup3rSecret, split by one character) a URL parser does not read as one. */
export const HOSTILE_URLS: ReadonlyArray<[string, string]> = [
  ["an unencoded '/' (does not parse)", 'amqp://guest:Sup3r/Secret@127.0.0.1:1'],
  [
    "digits then '/' (parses: host guest, vhost Secret@...)",
    'amqp://guest:1234/Sup3rSecret@127.0.0.1:1',
  ],
  ["an unencoded '?' (the tail parses as a query)", 'amqp://guest:Sup3r?Secret@127.0.0.1:1'],
  ["an unencoded '#' (the tail parses as a fragment)", 'amqp://guest:Sup3r#Secret@127.0.0.1:1'],
  ["an unencoded '@'", 'amqp://guest:Sup3r@Secret@127.0.0.1:1'],
];

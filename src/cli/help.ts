import type { CommandName } from './args.js';

const URL_HELP = `  --url <url>         broker URL (default: $AMQP_URL, else amqp://guest:guest@localhost:5672)`;

const TOP = `rabbit-rpc: request/response RPC over RabbitMQ

Usage:
  rabbit-rpc call <queue> <json> [--method <name>] [--timeout-ms <n>] [-v] [--url <url>]
  rabbit-rpc call <queue> <json> --stream [--window <n>] [same options]
  rabbit-rpc broadcast <queue> <json> [--timeout-ms <n>] [--max <n>] [--json] [--url <url>]
  rabbit-rpc ping <queue|service> [--json] [--timeout-ms <n>] [--url <url>]
  rabbit-rpc serve <queue> (--echo | --module <file>) [--prefetch <n>] [--no-reconnect]
                   [--url <url>]
  rabbit-rpc bench (<queue> | --echo) [<json> | --payload-bytes <n>] [-c <n>]
                   [--duration-ms <n> | -n <calls>] [--json] [--url <url>] ...
  rabbit-rpc demo [--url <url>]
  rabbit-rpc services [--timeout-ms <n>] [--json] [--url <url>]
  rabbit-rpc describe <queue> [--timeout-ms <n>] [--json] [--url <url>]
  rabbit-rpc asyncapi (<module> | --from-broker) [--out <file>] [--title <t>] [--url <url>]
  rabbit-rpc ui [--port <n>] [--host <address>] [--url <url>]

Commands:
  call       send one request and print the reply as JSON (--stream: each item of a
             streamed reply as it comes)
  broadcast  send one request to every server instance of a queue; print each answer
  ping       tell whether anything consumes a queue (or a service's queue)
  serve      answer requests on a queue until SIGINT/SIGTERM
  bench      call a queue with many calls in flight: calls/s, errors, latency percentiles
  demo       start a server and call it: replies, errors, a timeout, with latencies
  services   list the rabbit-rpc services on the broker: queue, service, instances, methods
  describe   one service's methods with their JSON Schemas, and its instances
  asyncapi   an AsyncAPI 3.0 document of a module's contracts, or of the broker's services
  ui         a service explorer in the browser: services, instances, schemas, live
             counters; call methods (or any queue) from a form, streams, broadcasts

Options:
  -h, --help          help (also: rabbit-rpc <command> --help)
  -v, --version       print the version

Exit codes: 0 ok, 1 error reply, 2 usage error, 3 UNAVAILABLE, 4 DEADLINE_EXCEEDED,
130 interrupted. Environment: AMQP_URL; NO_COLOR, FORCE_COLOR (colour is used only on a
terminal). More: docs/cli.md
`;

const CALL = `Usage: rabbit-rpc call <queue> <json> [--method <name>] [--timeout-ms <n>] [-v]
                       [--url <url>]
       rabbit-rpc call <queue> <json> --stream [--window <n>] [same options]

Sends <json> (parsed as JSON) to <queue>, waits for the reply and prints it as one
line of JSON on stdout. On failure prints "CODE: message" (and "details: <json>") on stderr.

With --stream, asks for a streamed reply and prints each item as one line of JSON as it
arrives; a server that replies once gives one line. An error ends the stream: the items
before it stay printed, the error goes to stderr, the exit code is the error's. SIGINT
stops reading, which cancels the stream on the server.

Options:
  --method <name>     call this method of a service (sent as the AMQP type property);
                      a service's queue is rpc.<service name> unless it chose another.
                      The request is first checked against the input schema the
                      service describes: a mismatch prints the issues, sends nothing
                      and exits 1 (INVALID_ARGUMENT)
  --no-check          with --method: send without checking the request first
  --timeout-ms <n>    deadline in milliseconds (default: 30000); with --stream, for the
                      whole stream
  --stream            print the items of a streamed reply as they come
  --window <n>        with --stream: items the server may send ahead of those printed,
                      1 to 10000 (default: 32)
  -v, --verbose       on stderr: the broker, connect time, the request's and the reply's
                      AMQP properties and sizes, round-trip time (with --stream: time to
                      the first item, item count, total). stdout keeps only the reply
${URL_HELP}
  -h, --help          this help

Exit codes: 0 ok, 1 error reply (e.g. INVALID_ARGUMENT from the handler, UNIMPLEMENTED for
an unknown method), 2 usage error (nothing sent), 3 UNAVAILABLE (no broker, no queue),
4 DEADLINE_EXCEEDED (no reply in time, e.g. nothing consumes <queue>), 130 interrupted.

Examples:
  rabbit-rpc call rpc_queue '"Hello World"'
  rabbit-rpc call users.get '{"id": 42}' --timeout-ms 2000
  rabbit-rpc call rpc.math '{"a": 1, "b": 2}' --method add -v
  rabbit-rpc call rpc.logs '{"from": 0}' --method tail --stream | jq .line
  rabbit-rpc call rpc_queue -- -1        (a JSON value starting with "-" goes after --)
`;

const BROADCAST = `Usage: rabbit-rpc broadcast <queue> <json> [--timeout-ms <n>] [--max <n>] [--json]
                            [--url <url>]

Sends <json> to every rabbit-rpc server instance of <queue> at once (not through the
queue: each instance gets its own copy) and collects their replies for --timeout-ms, or
until --max instances have replied. Prints one line per instance that answered:
  amq.gen-Xq3...  ok  {"status":"up"}
  amq.gen-7Hk...  INTERNAL  disk full
An instance is named by its connection's control queue. Instances that are down are
simply missing; nothing is queued for later.

Options:
  --timeout-ms <n>    how long to collect replies, in milliseconds (default: 2000)
  --max <n>           stop once this many instances have replied
  --json              print one JSON array on stdout: [{"instance","ok":true,"reply"}
                      or {"instance","ok":false,"code","message","details"}, ...]
${URL_HELP}
  -h, --help          this help

Exit codes: 0 at least one instance answered and none failed; 1 some answered with an
error; 2 usage error; 3 UNAVAILABLE: no instance answered in time (or no broker);
130 interrupted.

Examples:
  rabbit-rpc broadcast rpc_queue '"status"'
  rabbit-rpc broadcast workers '"status"' --max 1 --timeout-ms 500
  rabbit-rpc broadcast rpc_queue '{"reload": true}' --json | jq '.[] | select(.ok | not)'
`;

const PING = `Usage: rabbit-rpc ping <queue|service> [--json] [--timeout-ms <n>] [--url <url>]

Tells whether anything consumes <queue>, with a passive queue.declare (creates nothing):
  rpc_queue: 2 consumers, 0 messages waiting
A name without a dot that is no queue is tried as a service name too: its queue is
rpc.<name> (the default of defineService), and the output says which one it found.

Options:
  --json              print {"queue","exists","consumers","messages"} (and "service"
                      when the name was a service's) as one line of JSON on stdout
  --timeout-ms <n>    give up after this long, connecting included (default: 5000)
${URL_HELP}
  -h, --help          this help

Exit codes: 0 the queue has at least one consumer; 3 UNAVAILABLE: no such queue (calls
fail at once), no consumer (calls would wait until their deadline), or no broker;
4 DEADLINE_EXCEEDED: the broker did not answer in time; 1 other errors (e.g. an exclusive
queue of another connection); 2 usage error; 130 interrupted.

Examples:
  rabbit-rpc ping rpc_queue
  rabbit-rpc ping math --json         (finds rpc.math)
  until rabbit-rpc ping rpc_queue >/dev/null 2>&1; do sleep 1; done
`;

const SERVE = `Usage: rabbit-rpc serve <queue> (--echo | --module <file>) [--prefetch <n>]
                        [--no-reconnect] [--url <url>]

Declares <queue> (durable; one that exists is served as it is) and answers its requests until SIGINT
or SIGTERM, then stops taking requests, lets running ones finish, and exits 0.
Prints "serving <queue> on <url>" on stderr once it consumes.

Options:
  --echo              reply with the request unchanged
  --module <file>     ES module (path relative to the current directory) whose default
                      export, or named export "handler", is (request, ctx) => reply.
                      Throw RpcError from 'rabbit-rpc' to send an error code.
  --prefetch <n>      requests handled at once (default: 10)
  --no-reconnect      exit 3 when the connection is lost (default: reconnect with
                      backoff and keep serving; state changes are printed on stderr)
${URL_HELP}
  -h, --help          this help

Exit codes: 0 stopped by a signal, 2 usage error or unloadable module, 3 UNAVAILABLE
(no broker, or the connection was lost for good), 1 any other error.

Examples:
  rabbit-rpc serve rpc_queue --echo
  rabbit-rpc serve rpc_queue --module ./handler.mjs --prefetch 1
`;

const BENCH = `Usage: rabbit-rpc bench <queue> [<json> | --payload-bytes <n>] [options]
       rabbit-rpc bench --echo [<json> | --payload-bytes <n>] [options]

Calls <queue> in a closed loop, keeping --concurrency calls in flight, and prints
calls, calls/s, errors by code, latency percentiles (p50, p90, p99, p99.9, max) and
this process's CPU per call and memory. Any server works, rabbit-rpc or not. One
first call checks that something answers; then a warm-up; then the measured run.
While it runs, a status line shows on stderr if stderr is a terminal.

Options:
  -c, --concurrency <n>  calls in flight (default: 16)
  --duration-ms <n>      length of the measured run (default: 10000)
  -n, --calls <n>        measure this many calls instead of a duration
  --warmup-ms <n>        calls before the measured run, not counted (default: 1000)
  --timeout-ms <n>       deadline of each call (default: 30000)
  --method <name>        call this method of a service (the AMQP type property)
  --payload-bytes <n>    send a JSON string of exactly <n> bytes instead of <json>
                         (without either, the request is null)
  --echo                 serve an echo server on a temporary queue, on a second
                         connection of this process, and call it (no <queue>)
  --json                 print the result as one JSON object on stdout
${URL_HELP}
  -h, --help             this help

Exit codes: 0 every call succeeded; 1 some failed (the figures are printed, and the
first error of each code on stderr); 2 usage error; 3 UNAVAILABLE (no broker, no such
queue, or the connection was lost); 4 DEADLINE_EXCEEDED (the first call got no reply,
e.g. nothing consumes <queue>); 130 interrupted (the figures so far are printed).

Examples:
  rabbit-rpc bench rpc_queue '"Hello World"'
  rabbit-rpc bench rpc.math '{"a": 1, "b": 2}' --method add -c 64 --duration-ms 30000
  rabbit-rpc bench --echo --payload-bytes 65536 --calls 10000 --json
`;

const DEMO = `Usage: rabbit-rpc demo [--url <url>]

Connects, serves a fresh demo queue in this process, and calls it: "Hello World",
a few calls at once, a handler error (INVALID_ARGUMENT) and a timeout
(DEADLINE_EXCEEDED). Prints each outcome with its latency, closes, exits 0.

Options:
${URL_HELP}
  -h, --help          this help
`;

const SERVICES = `Usage: rabbit-rpc services [--timeout-ms <n>] [--json] [--url <url>]

Asks every rabbit-rpc server on the broker to describe itself (one request through the
control exchange; no management plugin) and prints one line per queue: queue, service,
instances, methods. Servers that are not rabbit-rpc do not answer and are not listed.

Options:
  --timeout-ms <n>    how long to collect answers (default: 1000)
  --json              the descriptions as one line of JSON (schemas, counters, ...)
${URL_HELP}
  -h, --help          this help
`;

const DESCRIBE = `Usage: rabbit-rpc describe <queue> [--timeout-ms <n>] [--json] [--url <url>]

Prints the service served on <queue>: each method with its input and output JSON Schema
and declared errors, then each instance (version, start time, calls in flight, counters).
No rabbit-rpc server of <queue> answering is NOT_FOUND (exit 1).

Options:
  --timeout-ms <n>    how long to collect answers (default: 1000)
  --json              the description as one line of JSON
${URL_HELP}
  -h, --help          this help
`;

const ASYNCAPI = `Usage: rabbit-rpc asyncapi <module> [--out <file>] [--title <title>]
       rabbit-rpc asyncapi --from-broker [--out <file>] [--timeout-ms <n>] [--url <url>]

Writes an AsyncAPI 3.0 document (JSON) of the contracts <module> exports (every
defineService value, whatever its export name), or of the services found on the broker.

Options:
  --from-broker       describe the services that answer on the broker instead
  --out <file>        write the document there instead of stdout
  --title <title>     the document's info.title (default: rabbit-rpc services)
  --timeout-ms <n>    with --from-broker: how long to collect answers (default: 1000)
${URL_HELP}
  -h, --help          this help
`;

const UI = `Usage: rabbit-rpc ui [--port <n>] [--host <address>] [--url <url>]

Starts a local web server and prints its address (with a token: open it as printed).
The page lists the rabbit-rpc services on the broker with their instances, methods and
JSON Schemas, calls in flight and counters, refreshed every 3 s with a chart of calls/s;
it calls a method from a form generated from its input schema (or JSON checked as you
type), any queue with raw JSON, streams (items as they come, with Stop) and broadcasts
(one row per instance), and keeps the last calls in a history you can run again.
Runs until SIGINT/SIGTERM.

Security: listens on 127.0.0.1 only unless --host is given. Every API request needs
the token printed at start (a new one each run); the page may only talk to its own
server. The broker's user name and password never reach the page. Whoever has the
token can call every service with this connection's rights: give --host only on a
network you trust.

Options:
  --port <n>          the port, 0 for any free one (default: 7373, else the next free
                      one up to 7382, else any)
  --host <address>    listen on this address instead, e.g. 0.0.0.0 (all interfaces)
${URL_HELP}
  -h, --help          this help

Exit codes: 0 stopped by a signal, 2 usage error, 3 UNAVAILABLE (no broker, or the port
is taken), 1 any other error.

Examples:
  rabbit-rpc ui
  rabbit-rpc ui --port 7000 --url amqp://user:pass@rabbit.internal:5672/prod
`;

/** The help text of `command`, or the top-level help. */
export function helpText(command: CommandName | undefined): string {
  switch (command) {
    case 'call':
      return CALL;
    case 'broadcast':
      return BROADCAST;
    case 'ping':
      return PING;
    case 'serve':
      return SERVE;
    case 'bench':
      return BENCH;
    case 'demo':
      return DEMO;
    case 'services':
      return SERVICES;
    case 'describe':
      return DESCRIBE;
    case 'asyncapi':
      return ASYNCAPI;
    case 'ui':
      return UI;
    case undefined:
      return TOP;
  }
}

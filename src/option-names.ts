import { RpcError } from './errors.js';

/**
 * Unknown option names. TypeScript rejects a misspelt option in an object literal, but
 * JavaScript callers (and objects built elsewhere, then passed on) would otherwise see it
 * ignored in silence: `{ timeout: 200 }` waits the 30 s default. So every public options
 * object is checked against its list of names, and a stranger is INVALID_ARGUMENT naming
 * the closest valid name.
 */

/**
 * The names of an options interface, as a Set. `names` is checked by the compiler against
 * `T` (`satisfies Record<keyof T, true>` at the call site), so the list cannot drift from
 * the interface.
 */
export function optionNames(names: Readonly<Record<string, true>>): ReadonlySet<string> {
  return new Set(Object.keys(names));
}

/**
 * Throws INVALID_ARGUMENT when `options` has a key (own or inherited, enumerable) outside
 * `known`. Cheap enough for every call: a for-in over the few keys given, each a Set
 * look-up; the edit distances are computed only once a stranger is found.
 *
 * @param where what the options belong to, for the message: `call()`, `serve()`, ...
 */
export function checkOptionNames(options: object, known: ReadonlySet<string>, where: string): void {
  for (const key in options) {
    if (!known.has(key)) unknownOption(key, known, where);
  }
}

function unknownOption(key: string, known: ReadonlySet<string>, where: string): never {
  const suggestion = closestName(key, known);
  const hint =
    suggestion === undefined
      ? `; its options are ${[...known].join(', ')}`
      : `: did you mean "${suggestion}"?`;
  throw new RpcError('INVALID_ARGUMENT', `${where} has no option "${key}"${hint}`, {
    details: { option: key, ...(suggestion === undefined ? {} : { suggestion }) },
  });
}

/**
 * The name in `known` closest to `key`, when it is close enough to be what was meant: a
 * case-insensitive edit distance of at most a third of the longer name (at least 1), or one
 * name being the start of the other (`timeout` → `timeoutMs`).
 */
export function closestName(key: string, known: Iterable<string>): string | undefined {
  const wanted = key.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of known) {
    const candidate = name.toLowerCase();
    const prefix =
      wanted.length >= 3 && (candidate.startsWith(wanted) || wanted.startsWith(candidate));
    const distance = prefix ? 0.5 : editDistance(wanted, candidate);
    const limit = Math.max(1, Math.floor(Math.max(wanted.length, candidate.length) / 3));
    if (distance <= limit && distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours each cost 1 (`prefech` → `prefetch` is 1, `tiemoutMs` → `timeoutMs` is 1).
 */
export function editDistance(a: string, b: string): number {
  // rows[i][j]: distance between a's first i characters and b's first j.
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const above = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(
        (above[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (above[j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(value);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

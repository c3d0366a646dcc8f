// The CLI's JSON Schema checker (src/ui/json-schema.ts) against schemas the libraries emit.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type } from 'arktype';
import { toJsonSchema } from '@valibot/to-json-schema';
import * as v from 'valibot';
import { z } from 'zod';
import { checkJsonSchema } from '../../src/ui/json-schema.js';

const zodSchema = z.toJSONSchema(
  z.object({
    name: z.string().min(2).max(5),
    tags: z.array(z.enum(['a', 'b'])).max(2),
    kind: z.union([z.literal('x'), z.number().int().multipleOf(5)]),
    pair: z.tuple([z.string(), z.boolean()]),
    note: z.string().regex(/^n/).optional(),
  }),
  { target: 'draft-7' },
);

test('zod: a valid value has no issues; each mistake is reported where it is', () => {
  assert.deepEqual(
    checkJsonSchema(zodSchema, { name: 'tea', tags: ['a'], kind: 10, pair: ['x', true] }),
    [],
  );
  assert.deepEqual(
    checkJsonSchema(zodSchema, {
      name: 't',
      tags: ['a', 'c', 'b'],
      kind: 7,
      pair: ['x', 1],
      note: 'm',
      more: 1,
    }).map((issue) => `${issue.path} ${issue.message}`),
    [
      '/name shorter than 2',
      '/tags more than 2 items',
      '/tags/1 expected one of "a", "b"',
      '/kind matches none of the 2 alternatives',
      '/pair/1 expected boolean, got integer',
      '/note does not match /^n/',
      '/more unexpected property "more"',
    ],
  );
  assert.deepEqual(checkJsonSchema(zodSchema, []), [
    { path: '/', message: 'expected object, got array' },
  ]);
});

test('valibot and arktype schemas', () => {
  const valibot = toJsonSchema(
    v.object({ id: v.pipe(v.number(), v.minValue(1)), tag: v.nullable(v.string()) }),
  );
  assert.deepEqual(checkJsonSchema(valibot, { id: 1, tag: null }), []);
  assert.deepEqual(
    checkJsonSchema(valibot, { id: 0 }).map((issue) => issue.message),
    ['missing required property "tag"', 'less than 1'],
  );
  const ark = type({ id: 'number.integer > 0', 'label?': 'string' })['~standard'].jsonSchema.input({
    target: 'draft-07',
  });
  assert.deepEqual(checkJsonSchema(ark, { id: 3 }), []);
  assert.deepEqual(
    checkJsonSchema(ark, { id: 0, label: 2 }).map((issue) => issue.path),
    ['/id', '/label'],
  );
});

test('recursive schemas through local $ref; hostile schemas stay bounded', () => {
  interface Tree {
    value: number;
    children: Tree[];
  }
  const tree: z.ZodType<Tree> = z.object({
    value: z.number(),
    get children() {
      return z.array(tree);
    },
  });
  const schema = z.toJSONSchema(tree, { target: 'draft-7' });
  assert.deepEqual(
    checkJsonSchema(schema, { value: 1, children: [{ value: 2, children: [] }] }),
    [],
  );
  assert.equal(
    checkJsonSchema(schema, { value: 1, children: [{ value: 'x', children: [] }] })[0]?.path,
    '/children/0/value',
  );
  // A reference to itself, and anyOf nested 40 deep two ways: answered, quickly.
  assert.deepEqual(checkJsonSchema({ $ref: '#' }, 1), []);
  let nested: unknown = { type: 'string' };
  for (let i = 0; i < 40; i++) nested = { anyOf: [nested, nested] };
  const started = performance.now();
  checkJsonSchema(nested, 1);
  assert.ok(performance.now() - started < 2_000);
  // At most 20 issues.
  assert.equal(
    checkJsonSchema({ type: 'array', items: { type: 'string' } }, Array(100).fill(1)).length,
    20,
  );
});

import type { ContractDescription, JsonSchema, MethodDescription } from '../protocol/describe.js';
import { isSchema } from './define-service.js';
import type { AnyService, Shape } from './types.js';

/**
 * What a contract says about itself (docs/guides/discovery.md): its name, queue and
 * methods, each with the JSON Schema of its input, output and declared errors' details
 * where the schema library can produce one. `typeOnly` shapes have none.
 *
 * Schemas come through the Standard JSON Schema interface (`~standard.jsonSchema`, which
 * zod 4 and arktype implement); valibot schemas through `@valibot/to-json-schema` when it
 * is installed (an optional peer dependency, decisions.md D32). A schema that cannot be
 * expressed in JSON Schema (a bigint, a transform) is left out rather than guessed.
 */
export async function describeService(
  service: AnyService,
  queue: string = service.queue,
): Promise<ContractDescription> {
  const methods: MethodDescription[] = [];
  for (const [name, spec] of Object.entries(service.methods)) {
    const errors: Array<{ code: string; details?: JsonSchema }> = [];
    for (const [code, shape] of Object.entries(spec.errors ?? {})) {
      const details = await jsonSchemaOf(shape);
      errors.push(details === undefined ? { code } : { code, details });
    }
    const method: { -readonly [K in keyof MethodDescription]: MethodDescription[K] } = {
      name,
      stream: spec.stream === true,
      idempotent: spec.idempotent === true,
      errors,
    };
    const input = await jsonSchemaOf(spec.input);
    const output = await jsonSchemaOf(spec.output);
    if (input !== undefined) method.input = input;
    if (output !== undefined) method.output = output;
    methods.push(method);
  }
  return { service: service.name, queue, methods };
}

/** The shape's JSON Schema of what travels on the wire, or undefined when it has none. */
async function jsonSchemaOf(shape: Shape): Promise<JsonSchema | undefined> {
  if (!isSchema(shape)) return undefined;
  const standard = shape['~standard'] as StandardWithJsonSchema;
  try {
    // `input`: on the wire travels what the schema accepts (a handler returns the output
    // schema's input type too; the client parses it).
    if (standard.jsonSchema && typeof standard.jsonSchema.input === 'function') {
      return plain(standard.jsonSchema.input({ target: 'draft-07' }));
    }
    if (standard.vendor === 'valibot') return plain(await fromValibot(shape));
  } catch {
    // Not expressible in JSON Schema: described without one.
  }
  return undefined;
}

/** The Standard JSON Schema interface, as far as it is used here. */
interface StandardWithJsonSchema {
  readonly vendor: string;
  readonly jsonSchema?: {
    readonly input?: (options: { readonly target: string }) => unknown;
  };
}

type ValibotConverter = (schema: unknown, config: { errorMode: 'throw' }) => unknown;
let valibotConverter: Promise<ValibotConverter | undefined> | undefined;

async function fromValibot(schema: unknown): Promise<unknown> {
  valibotConverter ??= import('@valibot/to-json-schema').then(
    (module) => module.toJsonSchema as unknown as ValibotConverter,
    () => undefined,
  );
  const convert = await valibotConverter;
  return convert?.(schema, { errorMode: 'throw' });
}

/** A copy that is plain JSON (what a describe reply carries), without `$schema`. */
function plain(schema: unknown): JsonSchema | undefined {
  if (typeof schema === 'boolean') return schema;
  if (typeof schema !== 'object' || schema === null) return undefined;
  const copy = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  delete copy['$schema'];
  return copy;
}

/**
 * The Standard Schema v1 interface (https://standardschema.dev), written here from the
 * specification so that rabbit-rpc depends on no validation library. zod, valibot,
 * arktype and others implement it; any object with a conforming `~standard` property works.
 *
 * Types only: nothing here exists at run time.
 */

/** A schema that validates values of type `Input` and produces values of type `Output`. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaV1Props<Input, Output>;
}

/** The `~standard` property of a {@link StandardSchemaV1}. */
export interface StandardSchemaV1Props<Input = unknown, Output = Input> {
  /** The version of the specification. */
  readonly version: 1;
  /** The library that made the schema ("zod", "valibot", "arktype", ...). */
  readonly vendor: string;
  /** Validates a value; may answer synchronously or with a promise. */
  readonly validate: (
    value: unknown,
    options?: StandardSchemaV1Options,
  ) => StandardSchemaV1Result<Output> | Promise<StandardSchemaV1Result<Output>>;
  /** Carries the inferred types; never set at run time. */
  readonly types?: StandardSchemaV1Types<Input, Output> | undefined;
}

/** Options a caller may pass to `validate` (library-specific). */
export interface StandardSchemaV1Options {
  readonly libraryOptions?: Record<string, unknown> | undefined;
}

/** What `validate` answers: the (possibly transformed) value, or issues. */
export type StandardSchemaV1Result<Output> =
  StandardSchemaV1SuccessResult<Output> | StandardSchemaV1FailureResult;

export interface StandardSchemaV1SuccessResult<Output> {
  readonly value: Output;
  readonly issues?: undefined;
}

export interface StandardSchemaV1FailureResult {
  readonly issues: readonly StandardSchemaV1Issue[];
}

/** One validation problem. */
export interface StandardSchemaV1Issue {
  readonly message: string;
  /** Where in the value the problem is: keys, or segments holding a key. */
  readonly path?: readonly (PropertyKey | StandardSchemaV1PathSegment)[] | undefined;
}

export interface StandardSchemaV1PathSegment {
  readonly key: PropertyKey;
}

export interface StandardSchemaV1Types<Input = unknown, Output = Input> {
  readonly input: Input;
  readonly output: Output;
}

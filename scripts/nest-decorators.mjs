// Node loader for Nest code run from TypeScript sources (test/nestjs, examples/nestjs).
//
//   node --import tsx --import ./scripts/nest-decorators.mjs file.ts
//
// Nest's dependency injection and ValidationPipe read `design:paramtypes`, which only
// TypeScript's own compiler emits (emitDecoratorMetadata); tsx (esbuild) does not. This
// hook compiles the .ts files of those two folders with TypeScript's transpileModule and
// leaves everything else to tsx. Registered after tsx, so it runs first.
import { register } from 'node:module';

register('./nest-decorators-hooks.mjs', import.meta.url);

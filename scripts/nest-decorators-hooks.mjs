// The load hook of scripts/nest-decorators.mjs (module hooks run in their own thread).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const FOLDERS = ['/test/nestjs/', '/examples/nestjs/'];
const COMPILER_OPTIONS = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  sourceMap: false,
  inlineSourceMap: true,
  inlineSources: true,
  verbatimModuleSyntax: false,
};

export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && url.endsWith('.ts') && FOLDERS.some((f) => url.includes(f))) {
    const file = fileURLToPath(url);
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: COMPILER_OPTIONS,
      fileName: file,
    });
    return { format: 'module', source: outputText, shortCircuit: true };
  }
  return nextLoad(url, context);
}

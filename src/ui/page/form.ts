import type { WireSchema } from '../api.js';
import { checkJsonSchema } from '../json-schema.js';
import { h } from './dom.js';

/** A field of the generated form: one scalar property of an object schema. */
interface Field {
  readonly name: string;
  readonly kind: 'string' | 'number' | 'integer' | 'boolean' | 'enum';
  readonly required: boolean;
  readonly choices: readonly unknown[];
  readonly hint: string;
}

export type Parsed =
  | { readonly ok: true; readonly value: unknown; readonly text: string }
  | { readonly ok: false; readonly message: string };

/** The request editor: a form when the schema is an object of scalars, and JSON always. */
export interface RequestEditor {
  readonly element: HTMLElement;
  /** The request as it stands: parsed JSON, or why it does not parse. */
  read(): Parsed;
  setText(text: string): void;
}

/**
 * Builds the editor for an input schema (undefined: any JSON). The JSON is checked against
 * the schema as you type; a mismatch is shown, not enforced (the service has the last word).
 */
export function requestEditor(schema: WireSchema | undefined, text?: string): RequestEditor {
  const fields = scalarFields(schema);
  const textarea = h('textarea', {
    id: 'json-editor',
    spellcheck: 'false',
    rows: 8,
    'aria-label': 'request JSON',
  });
  textarea.value = text ?? JSON.stringify(example(schema), null, 2);
  const issues = h('ul', { id: 'issues', class: 'issues' });
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  let form: HTMLElement | undefined;

  const read = (): Parsed => {
    try {
      return { ok: true, value: JSON.parse(textarea.value) as unknown, text: textarea.value };
    } catch (error) {
      return { ok: false, message: error instanceof Error ? error.message : String(error) };
    }
  };

  const check = (): void => {
    const parsed = read();
    issues.replaceChildren();
    if (!parsed.ok) {
      issues.append(h('li', { class: 'bad' }, `not JSON: ${parsed.message}`));
      return;
    }
    if (schema === undefined) {
      issues.append(h('li', { class: 'muted' }, 'no input schema: any JSON is sent as it is'));
      return;
    }
    const found = checkJsonSchema(schema, parsed.value);
    if (found.length === 0) issues.append(h('li', { class: 'good' }, 'matches the input schema'));
    for (const issue of found) {
      issues.append(h('li', { class: 'warn' }, `${issue.path}: ${issue.message}`));
    }
  };

  /** The form's values into the JSON (other properties of the JSON are kept). */
  const fromForm = (): void => {
    const parsed = read();
    const base = new Map(
      parsed.ok && typeof parsed.value === 'object' && parsed.value !== null
        ? Object.entries(parsed.value)
        : [],
    );
    for (const field of fields ?? []) {
      const input = inputs.get(field.name);
      if (input === undefined) continue;
      const value = fieldValue(field, input);
      if (value === undefined) base.delete(field.name);
      else base.set(field.name, value);
    }
    textarea.value = JSON.stringify(Object.fromEntries(base), null, 2);
    check();
  };

  /** The JSON into the form, where it fits. */
  const toForm = (): void => {
    const parsed = read();
    if (!parsed.ok || typeof parsed.value !== 'object' || parsed.value === null) return;
    const value = parsed.value as Record<string, unknown>;
    for (const field of fields ?? []) {
      const input = inputs.get(field.name);
      if (input === undefined) continue;
      const current = value[field.name];
      if (input instanceof HTMLInputElement && input.type === 'checkbox') {
        input.checked = current === true;
      } else if (input instanceof HTMLSelectElement) {
        const index = field.choices.findIndex((choice) => same(choice, current));
        input.value = index === -1 ? '' : String(index);
      } else {
        input.value =
          current === undefined
            ? ''
            : typeof current === 'string'
              ? current
              : JSON.stringify(current);
      }
    }
  };

  if (fields !== undefined && fields.length > 0) {
    form = h('div', { id: 'form', class: 'form' });
    for (const field of fields) {
      const input = fieldInput(field, fromForm);
      inputs.set(field.name, input);
      form.append(
        h(
          'label',
          { class: 'field' },
          h('span', { class: 'name' }, field.name, field.required ? h('b', {}, ' *') : null),
          input,
          h('span', { class: 'hint muted' }, field.hint),
        ),
      );
    }
    toForm();
  }
  textarea.addEventListener('input', () => {
    toForm();
    check();
  });
  check();
  const element = h(
    'div',
    { class: 'editor' },
    form ? h('h4', {}, 'Form') : null,
    form,
    h('h4', {}, 'JSON'),
    textarea,
    issues,
  );
  return {
    element,
    read,
    setText(next: string) {
      textarea.value = next;
      toForm();
      check();
    },
  };
}

function fieldInput(field: Field, onChange: () => void): HTMLInputElement | HTMLSelectElement {
  const common = { name: field.name, 'data-field': field.name };
  switch (field.kind) {
    case 'boolean':
      return h('input', { ...common, type: 'checkbox', onchange: onChange });
    case 'enum':
      return h(
        'select',
        { ...common, onchange: onChange },
        h('option', { value: '' }, field.required ? '(choose)' : '(none)'),
        ...field.choices.map((choice, index) =>
          h('option', { value: String(index) }, JSON.stringify(choice)),
        ),
      );
    case 'number':
    case 'integer':
      return h('input', {
        ...common,
        type: 'number',
        step: field.kind === 'integer' ? '1' : 'any',
        oninput: onChange,
      });
    case 'string':
      return h('input', { ...common, type: 'text', autocomplete: 'off', oninput: onChange });
  }
}

function fieldValue(field: Field, input: HTMLInputElement | HTMLSelectElement): unknown {
  if (input instanceof HTMLSelectElement) {
    return input.value === '' ? undefined : field.choices[Number(input.value)];
  }
  if (field.kind === 'boolean') return input.checked ? true : field.required ? false : undefined;
  if (input.value === '') return undefined;
  if (field.kind === 'number' || field.kind === 'integer') {
    const number = Number(input.value);
    return Number.isFinite(number) ? number : input.value;
  }
  return input.value;
}

/** The fields of an object schema whose properties are all scalars; undefined otherwise. */
export function scalarFields(schema: WireSchema | undefined): Field[] | undefined {
  if (!isRecord(schema)) return undefined;
  const properties = schema['properties'];
  if (!isRecord(properties)) return undefined;
  if (schema['type'] !== undefined && schema['type'] !== 'object') return undefined;
  const required = Array.isArray(schema['required']) ? schema['required'] : [];
  const fields: Field[] = [];
  for (const [name, property] of Object.entries(properties)) {
    if (!isRecord(property)) return undefined;
    const choices = Array.isArray(property['enum'])
      ? property['enum']
      : 'const' in property
        ? [property['const']]
        : undefined;
    const type = property['type'];
    let kind: Field['kind'];
    if (choices !== undefined) kind = 'enum';
    else if (type === 'string' || type === 'number' || type === 'integer' || type === 'boolean') {
      kind = type;
    } else return undefined;
    fields.push({
      name,
      kind,
      required: required.includes(name),
      choices: choices ?? [],
      hint: hintOf(property, kind),
    });
  }
  return fields;
}

function hintOf(property: Readonly<Record<string, unknown>>, kind: Field['kind']): string {
  const parts: string[] = [kind];
  for (const key of ['minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'format']) {
    const value = property[key];
    if (typeof value === 'number' || typeof value === 'string') parts.push(`${key} ${value}`);
  }
  if (typeof property['description'] === 'string') parts.push(property['description']);
  return parts.join(', ');
}

/** A value that matches simple schemas, to start from: required properties filled in. */
export function example(schema: WireSchema | undefined, depth = 0): unknown {
  if (!isRecord(schema) || depth > 8) return null;
  if ('const' in schema) return schema['const'];
  if (Array.isArray(schema['enum'])) return schema['enum'][0] ?? null;
  if ('default' in schema) return schema['default'];
  const declared: unknown = schema['type'];
  const type: unknown = Array.isArray(declared) ? (declared as unknown[])[0] : declared;
  switch (type) {
    case 'string':
      return '';
    case 'number':
    case 'integer':
      return typeof schema['minimum'] === 'number' ? schema['minimum'] : 0;
    case 'boolean':
      return false;
    case 'array':
      return [];
    case 'null':
      return null;
  }
  const properties = schema['properties'];
  if (type === 'object' || isRecord(properties)) {
    const value: Record<string, unknown> = {};
    const required = Array.isArray(schema['required']) ? schema['required'] : [];
    if (isRecord(properties)) {
      for (const [name, property] of Object.entries(properties)) {
        if (required.includes(name)) value[name] = example(property as WireSchema, depth + 1);
      }
    }
    return value;
  }
  const first = [schema['anyOf'], schema['oneOf']].find(Array.isArray);
  if (Array.isArray(first)) return example(first[0] as WireSchema, depth + 1);
  return null;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

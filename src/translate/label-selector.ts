/**
 * Kubernetes label selectors in their string form (`kubectl -l`, `labelSelector=` on the API):
 * equality (`a=b`, `a==b`, `a!=b`), sets (`a in (x,y)`, `a notin (x)`), existence (`a`, `!a`),
 * integer comparison (`a>3`, `a<3`); a comma means AND. Pure: parse once at start-up, match per pod.
 *
 * The grammar, the validation and the matching follow k8s.io/apimachinery/pkg/labels: `!=` and
 * `notin` also match objects without the label; `=`/`==` are a one-value `in`.
 */

export type Labels = Readonly<Record<string, string>>;

export type SelectorOperator = 'in' | 'notin' | 'exists' | 'notexists' | 'gt' | 'lt';

export interface Requirement {
  key: string;
  operator: SelectorOperator;
  /** One or more for in/notin, exactly one (an integer) for gt/lt, none for exists/notexists. */
  values: string[];
}

export interface LabelSelector {
  /** As written, for logs. */
  text: string;
  requirements: Requirement[];
}

export class SelectorError extends Error {
  override name = 'SelectorError';
}

// ─── validation (k8s.io/apimachinery/pkg/util/validation) ───────────────────

const NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const NAME_MAX = 63;
/** The operand of `>` and `<`, in the selector and in the label it is compared with. */
const INTEGER = /^-?\d+$/;
const PREFIX_MAX = 253;

/** Why a label key is not a qualified name (`[prefix/]name`), or undefined when it is. */
export function keyProblem(key: string): string | undefined {
  const slash = key.indexOf('/');
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (slash >= 0) {
    const prefix = key.slice(0, slash);
    if (prefix === '' || prefix.length > PREFIX_MAX || !DNS_SUBDOMAIN.test(prefix)) {
      return `the prefix of key "${key}" must be a lowercase DNS subdomain of at most ${PREFIX_MAX} characters`;
    }
  }
  if (name.length > NAME_MAX || !NAME.test(name)) {
    return `key "${key}" must be at most ${NAME_MAX} characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Why a label value is invalid, or undefined when it is valid (the empty value is). */
export function valueProblem(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > NAME_MAX || !NAME.test(value)) {
    return `value "${value}" must be at most ${NAME_MAX} characters of letters, digits, '-', '_' or '.', starting and ending with a letter or digit`;
  }
  return undefined;
}

// ─── lexer ───────────────────────────────────────────────────────────────────

type Token =
  { kind: 'identifier'; text: string } | { kind: '!' | '=' | '==' | '!=' | '>' | '<' | '(' | ')' | ',' | 'in' | 'notin' | 'end' };

const SPECIAL = new Set(['!', '=', ',', '(', ')', '<', '>']);
const isSpace = (c: string) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (isSpace(c)) {
      i++;
    } else if (SPECIAL.has(c)) {
      const two = text.slice(i, i + 2);
      if (two === '==' || two === '!=') {
        tokens.push({ kind: two });
        i += 2;
      } else {
        tokens.push({ kind: c as '!' | '=' | ',' | '(' | ')' | '<' | '>' });
        i++;
      }
    } else {
      let end = i;
      while (end < text.length && !SPECIAL.has(text[end]!) && !isSpace(text[end]!)) end++;
      const word = text.slice(i, end);
      tokens.push(word === 'in' || word === 'notin' ? { kind: word } : { kind: 'identifier', text: word });
      i = end;
    }
  }
  tokens.push({ kind: 'end' });
  return tokens;
}

// ─── parser ──────────────────────────────────────────────────────────────────

function describe(token: Token): string {
  return token.kind === 'identifier' ? `"${token.text}"` : token.kind === 'end' ? 'the end' : `'${token.kind}'`;
}

class Parser {
  private at = 0;

  constructor(private readonly tokens: Token[]) {}

  private peek(): Token {
    return this.tokens[this.at]!;
  }

  private next(): Token {
    const token = this.tokens[this.at]!;
    if (token.kind !== 'end') this.at++;
    return token;
  }

  parse(): Requirement[] {
    const requirements: Requirement[] = [];
    for (;;) {
      requirements.push(this.requirement());
      const after = this.next();
      if (after.kind === 'end') return requirements;
      if (after.kind !== ',') throw new SelectorError(`found ${describe(after)} after a requirement; expected ',' or the end`);
    }
  }

  private key(): string {
    const token = this.next();
    if (token.kind !== 'identifier') throw new SelectorError(`found ${describe(token)}; expected a label key`);
    const problem = keyProblem(token.text);
    if (problem !== undefined) throw new SelectorError(problem);
    return token.text;
  }

  private requirement(): Requirement {
    if (this.peek().kind === '!') {
      this.next();
      return { key: this.key(), operator: 'notexists', values: [] };
    }
    const key = this.key();
    // A separator right after the key belongs to the selector: the requirement is `key` alone.
    if (this.peek().kind === ',' || this.peek().kind === 'end') return { key, operator: 'exists', values: [] };
    const op = this.next();
    switch (op.kind) {
      case '=':
      case '==':
      case '!=':
        return { key, operator: op.kind === '!=' ? 'notin' : 'in', values: [this.value(true)] };
      case 'in':
      case 'notin':
        return { key, operator: op.kind, values: this.set(key) };
      case '>':
      case '<': {
        // An integer, not a label value (Kubernetes checks only that it parses).
        const value = this.value(false, false);
        if (!INTEGER.test(value)) throw new SelectorError(`"${key} ${op.kind} ${value}": the value of ${op.kind} must be an integer`);
        return { key, operator: op.kind === '>' ? 'gt' : 'lt', values: [value] };
      }
      default:
        throw new SelectorError(`found ${describe(op)} after key "${key}"; expected =, ==, !=, in, notin, >, <, ',' or the end`);
    }
  }

  /** One value; an empty one (`a=`) only where the next token ends the requirement. */
  private value(emptyAllowed: boolean, validate = true): string {
    const token = this.peek();
    if (token.kind === 'identifier') {
      this.next();
      const problem = validate ? valueProblem(token.text) : undefined;
      if (problem !== undefined) throw new SelectorError(problem);
      return token.text;
    }
    if (emptyAllowed && (token.kind === ',' || token.kind === 'end')) return '';
    throw new SelectorError(`found ${describe(token)}; expected a value`);
  }

  private set(key: string): string[] {
    const open = this.next();
    if (open.kind !== '(') throw new SelectorError(`found ${describe(open)} after "${key} in"; expected '('`);
    const values: string[] = [];
    for (;;) {
      const token = this.peek();
      values.push(token.kind === ',' || token.kind === ')' ? '' : this.value(false));
      const separator = this.next();
      if (separator.kind === ')') break;
      if (separator.kind !== ',') throw new SelectorError(`found ${describe(separator)} in the values of "${key}"; expected ',' or ')'`);
    }
    if (values.length === 1 && values[0] === '') throw new SelectorError(`the set of values of "${key}" is empty`);
    return [...new Set(values)];
  }
}

/** Parses a selector; throws SelectorError saying what is wrong. Blank text has no requirement. */
export function parseLabelSelector(text: string): LabelSelector {
  const tokens = tokenize(text);
  if (tokens.length === 1) return { text, requirements: [] };
  return { text, requirements: new Parser(tokens).parse() };
}

// ─── matching ────────────────────────────────────────────────────────────────

function has(labels: Labels, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(labels, key);
}

export function matchesRequirement(requirement: Requirement, labels: Labels): boolean {
  const present = has(labels, requirement.key);
  const value = present ? labels[requirement.key]! : undefined;
  switch (requirement.operator) {
    case 'exists':
      return present;
    case 'notexists':
      return !present;
    case 'in':
      return value !== undefined && requirement.values.includes(value);
    case 'notin':
      return value === undefined || !requirement.values.includes(value);
    case 'gt':
    case 'lt': {
      if (value === undefined || !INTEGER.test(value)) return false;
      const actual = BigInt(value);
      const bound = BigInt(requirement.values[0]!);
      return requirement.operator === 'gt' ? actual > bound : actual < bound;
    }
  }
}

/** Whether every requirement holds (a selector without requirements matches everything). */
export function matchesLabels(selector: LabelSelector, labels: Labels): boolean {
  return selector.requirements.every((requirement) => matchesRequirement(requirement, labels));
}

import { readFile } from 'node:fs/promises';
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * BMC credentials. The password is kept in a private field and is redacted from
 * JSON.stringify, util.inspect (console.log, pino's serializers) and String(): the only way
 * out is `reveal()`, called where the password is handed to the BMC.
 */
export class BmcCredentials {
  readonly username: string;
  readonly #password: string;

  constructor(username: string, password: string) {
    if (username === '') throw new Error('the BMC username is empty');
    if (password === '') throw new Error('the BMC password is empty');
    this.username = username;
    this.#password = password;
  }

  reveal(): string {
    return this.#password;
  }

  toJSON(): Record<string, string> {
    return { username: this.username, password: REDACTED };
  }

  toString(): string {
    return `BmcCredentials(${this.username}, ${REDACTED})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

export class CredentialsError extends Error {
  override readonly name = 'CredentialsError';
}

/** Reads a password file (`--password-file`): its content without the trailing newline. */
export async function readPasswordFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CredentialsError(`cannot read the password file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const password = text.replace(/\r?\n$/, '');
  if (password === '') throw new CredentialsError(`the password file ${path} is empty`);
  return password;
}

export interface SecretLike {
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** Credentials from a Secret with keys `username` and `password` (the Metal3 format). */
export function credentialsFromSecret(secret: SecretLike, where: string): BmcCredentials {
  const name = `${secret.metadata?.namespace ?? '?'}/${secret.metadata?.name ?? '?'}`;
  const get = (key: string): string | undefined => {
    const raw = secret.data?.[key];
    if (raw !== undefined) return Buffer.from(raw, 'base64').toString('utf8');
    return secret.stringData?.[key];
  };
  const missing = ['username', 'password'].filter((k) => !get(k));
  if (missing.length > 0) {
    throw new CredentialsError(`${where}: Secret ${name} has no ${missing.join(' and no ')}; it needs the keys username and password`);
  }
  return new BmcCredentials(get('username') as string, get('password') as string);
}

import { readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * The local variant of config/webhook/manifests.yaml: each webhook's Service clientConfig
 * replaced by a url on the host where `bamel manager` serves it, with the caBundle of the
 * local CA. Optionally under another name and with an extra label every object must carry
 * to be sent (objectSelector), so that a test's registration concerns its own objects only.
 *
 *   node dist/hack/webhook-config.js --url https://127.0.0.1:19443 --ca-file ca.crt [--name N] [--selector k=v]
 */

// hack/ in the sources, dist/hack/ once compiled: the repository is above either.
const above = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = basename(above) === 'dist' ? resolve(above, '..') : above;

export interface LocalWebhookOptions {
  /** Base URL of the webhook server, e.g. https://127.0.0.1:19443 (each webhook's path is appended). */
  url: string;
  /** PEM of the CA that signed the serving certificate. */
  caBundle: string;
  /** metadata.name of the configuration; default that of the manifest. */
  name?: string;
  /** Labels every object must also carry to be sent to the webhook. */
  selector?: Record<string, string>;
}

interface WebhookEntry {
  name: string;
  clientConfig: { service?: { path?: string }; url?: string; caBundle?: string };
  objectSelector?: { matchLabels?: Record<string, string> };
}

interface WebhookConfiguration {
  metadata: { name: string; annotations?: Record<string, string> };
  webhooks: WebhookEntry[];
}

export function manifestPath(): string {
  return join(root, 'config', 'webhook', 'manifests.yaml');
}

export function localWebhookConfiguration(opts: LocalWebhookOptions): WebhookConfiguration {
  const config = parse(readFileSync(manifestPath(), 'utf8')) as WebhookConfiguration;
  if (opts.name !== undefined) config.metadata.name = opts.name;
  delete config.metadata.annotations;
  const base = opts.url.replace(/\/+$/, '');
  for (const webhook of config.webhooks) {
    const path = webhook.clientConfig.service?.path;
    if (path === undefined) throw new Error(`${manifestPath()}: webhook ${webhook.name} has no clientConfig.service.path`);
    webhook.clientConfig = { url: `${base}${path}`, caBundle: Buffer.from(opts.caBundle).toString('base64') };
    if (opts.selector !== undefined) {
      webhook.objectSelector = { matchLabels: { ...webhook.objectSelector?.matchLabels, ...opts.selector } };
    }
  }
  return config;
}

function main(argv: string[]): void {
  const value = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i === -1 ? undefined : argv[i + 1];
  };
  const url = value('--url');
  const caFile = value('--ca-file');
  if (url === undefined || caFile === undefined) {
    process.stderr.write('usage: webhook-config --url https://127.0.0.1:PORT --ca-file ca.crt [--name NAME] [--selector key=value]\n');
    process.exit(2);
  }
  const name = value('--name');
  const selectorText = value('--selector');
  let selector: Record<string, string> | undefined;
  if (selectorText !== undefined) {
    const [k, v] = selectorText.split('=', 2);
    if (!k || v === undefined) throw new Error(`--selector ${selectorText}: expected key=value`);
    selector = { [k]: v };
  }
  const config = localWebhookConfiguration({ url, caBundle: readFileSync(caFile, 'utf8'), ...(name ? { name } : {}), ...(selector ? { selector } : {}) });
  // JSON: YAML 1.1 readers (kubectl) would take an unquoted yes or on for a boolean.
  process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main(process.argv.slice(2));

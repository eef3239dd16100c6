import type { Command } from 'commander';
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { CertRotator } from '../manager/cert-rotator.js';

/**
 * The `bamel manager` flags of certificate rotation (manager/cert-rotator.ts): with
 * --cert-rotation the manager issues its own CA and serving certificate, keeps them in a
 * Secret, writes them where the webhook (and the extender) read them, and keeps the
 * webhook configuration's caBundle current. Without it, certificates come from outside
 * (cert-manager, a script) through --webhook-cert-dir.
 */
export interface CertRotationFlags {
  certRotation: boolean;
  certSecretName: string;
  webhookConfigurationName: string;
  certHosts?: string;
  webhookServiceName: string;
  extenderServiceName: string;
  webhookCertDir?: string;
  extenderCertDir?: string;
}

export function registerCertRotationFlags(command: Command): void {
  command
    .option('--cert-rotation', 'issue and rotate the CA and serving certificate (kept in --cert-secret-name), write them into --webhook-cert-dir (and --extender-cert-dir), and keep the caBundle of --webhook-configuration-name current', false)
    .option('--cert-secret-name <name>', "the Secret in the manager's namespace holding the CA and serving certificate", 'bamel-webhook-server-cert')
    .option('--webhook-configuration-name <name>', 'the ValidatingWebhookConfiguration whose caBundle --cert-rotation keeps current ("" for none)', 'bamel-validating-webhook-configuration')
    .option('--webhook-service-name <name>', "the webhook's Service (its DNS names go into the serving certificate)", 'bamel-webhook-service')
    .option('--extender-service-name <name>', "the extender's Service (its DNS names go into the serving certificate)", 'bamel-extender')
    .option('--cert-hosts <list>', 'comma-separated DNS names and IPv4 addresses of the serving certificate (default: both Services\' names in the namespace)');
}

export function certRotationOptions(flags: CertRotationFlags, ctx: { kc: k8s.KubeConfig; namespace: string; logger: Logger }): CertRotator | undefined {
  if (!flags.certRotation) return undefined;
  if (!flags.webhookCertDir && !flags.extenderCertDir) {
    throw new Error('--cert-rotation needs --webhook-cert-dir (or --extender-cert-dir): the directory the certificate is written into');
  }
  const ns = ctx.namespace;
  const serviceNames = (svc: string): string[] => [svc, `${svc}.${ns}`, `${svc}.${ns}.svc`, `${svc}.${ns}.svc.cluster.local`];
  const hosts = flags.certHosts
    ? flags.certHosts.split(',').map((h) => h.trim()).filter((h) => h !== '')
    : [...serviceNames(flags.webhookServiceName), ...serviceNames(flags.extenderServiceName)];
  return new CertRotator({
    kc: ctx.kc,
    namespace: ns,
    secretName: flags.certSecretName,
    ...(flags.webhookConfigurationName ? { webhookConfigurationName: flags.webhookConfigurationName } : {}),
    hosts,
    certDirs: [flags.webhookCertDir, flags.extenderCertDir].filter((d): d is string => d !== undefined),
    logger: ctx.logger.child({ component: 'cert-rotator' }),
  });
}

/**
 * What a failed ipmitool run means. ipmitool reports every failure as exit code 1 and
 * some words on stderr; this file reads those words and turns them into the typed BmcError
 * a caller can act on. Kept apart from the runner so that the reading can be checked line
 * by line against what ipmitool prints, without a BMC.
 */
import { BmcAuthError, BmcProtocolError, BmcRefusedError, BmcTimeoutError, BmcUnreachableError, BmcUnsupportedError, type BmcError } from '../errors.js';
import type { ProbeResult } from './ping.js';

export type IpmitoolFailureKind = 'busy' | 'cipher' | 'auth' | 'unresolved' | 'no-v2' | 'no-answer' | 'refused' | 'unsupported' | 'unknown';

export interface IpmitoolFailure {
  kind: IpmitoolFailureKind;
  /** The ipmitool line that decided the kind, or its last error line. */
  detail: string;
}

/*
 * What ipmitool (1.8.19, lanplus, run with -v so that the LOG_INFO lines below appear)
 * prints on stderr, and what it means. Tried against ipmi_sim (OpenIPMI 2.0.33) where noted.
 *
 * busy (retried): an answer that says "not now". "Error in open session response message :
 *   insufficient resources for session" (RAKP status 0x01) and the completion codes 0xC0
 *   "Node busy", 0xC3 "Timeout", 0xD2 "BMC initialization in progress" after "... failed: "
 *   or "Get Auth Capabilities error: " (the list Ironic retries on).
 * cipher (next suite): "Error in open session response message : invalid authentication
 *   algorithm" (ipmi_sim asked for suite 17), the other algorithm/cipher-suite RAKP statuses,
 *   "Authentication algorithm 0x.. is not what we requested 0x..", and "Unsupported cipher
 *   suite ID : 17" from an ipmitool built without SHA-256.
 * auth (BmcAuthError, never retried: BMCs lock accounts): "> RAKP 2 HMAC is invalid" (wrong
 *   password; ipmi_sim), "RAKP 2 message indicates an error : unauthorized name" (unknown
 *   user; ipmi_sim), "RAKP 4 message has invalid integrity check value", the role RAKP
 *   statuses, "Set Session Privilege Level to ADMINISTRATOR failed", and ipmitool's own
 *   length checks.
 * unresolved (BmcUnreachableError): "Address lookup for HOST failed".
 * no-answer: "Get Auth Capabilities error" without a completion code: not one packet came
 *   back. ipmitool prints exactly this for a closed port (it ignores the ICMP port
 *   unreachable) and for a BMC that is hung (ipmi_sim under SIGSTOP), after -N seconds per
 *   try. "Unable to get Chassis Power Status" / "Unable to set Chassis Power Control to X"
 *   are the same silence after the session was set up. An RMCP presence ping then tells
 *   them apart: refused or no route -> BmcUnreachableError; a pong or silence ->
 *   BmcTimeoutError (the BMC is there but does not answer; retried).
 * unsupported (BmcUnsupportedError): the BMC does not implement the command. ipmi_sim
 *   answers the DCMI Get Power Reading (netfn 0x2C) with "DCMI request failed because:
 *   Invalid command (c1)"; "Command not supported in present state" (0xD5) and "Invalid
 *   data field in request" (0xCC, DCMI mode not offered) mean the same to a caller.
 * refused (BmcRefusedError): any other completion code on the command, e.g. ipmi_sim's
 *   "Set Chassis Power Control to Up/On failed: Unspecified error" when its chassis
 *   control program fails.
 * Every failure ends with "Error: Unable to establish IPMI v2 / RMCP+ session" when it
 * happens during session setup, so that line alone says nothing and is not matched.
 */
const FAILURE_RULES: readonly { kind: IpmitoolFailureKind; pattern: RegExp }[] = [
  { kind: 'busy', pattern: /insufficient resources for (?:session|role)/i },
  { kind: 'busy', pattern: /(?:failed|error): (?:Node busy|Timeout|BMC initialization in progress)\s*$/ },
  {
    kind: 'cipher',
    pattern:
      /^Error in open session response message : (?:invalid (?:authentication|integrity|confidentiality) algorithm|no matching (?:authentication algorithm|integrity payload|cipher suite))/,
  },
  { kind: 'cipher', pattern: /^(?:Authentication|Integrity|Encryption) algorithm 0x[0-9a-f]+ is not what we requested/i },
  { kind: 'cipher', pattern: /^Unsupported cipher suite ID : \d+/ },
  { kind: 'auth', pattern: /RAKP 2 HMAC is invalid/ },
  { kind: 'auth', pattern: /RAKP 4 message has invalid integrity check value/ },
  { kind: 'auth', pattern: /RAKP [24] message indicates an error : / },
  { kind: 'auth', pattern: /^Error in open session response message : (?:invalid role|unauthorized role requested|invalid name length|unauthorized name)/ },
  { kind: 'auth', pattern: /^Set Session Privilege Level to \S+ failed/ },
  { kind: 'auth', pattern: /password is longer than \d+ bytes|Username is too long/ },
  { kind: 'unresolved', pattern: /^Address lookup for \S+ failed/ },
  { kind: 'no-v2', pattern: /^This BMC does not support IPMI v2 \/ RMCP\+/ },
  { kind: 'no-answer', pattern: /^Get Auth Capabilities error\s*$/ },
  { kind: 'no-answer', pattern: /Error: no response from RAKP [13] message/ },
  { kind: 'no-answer', pattern: /^Unable to (?:get Chassis Power Status|set Chassis Power Control to \S+)\s*$/ },
  { kind: 'unsupported', pattern: /^DCMI request failed because: (?:Invalid command|Command not supported in present state|Invalid data field in request)/ },
  { kind: 'refused', pattern: /^(?:Get Chassis Power Status|Set Chassis Power Control to \S+) failed: / },
];

// -v chatter that is not an error even when it says "failed" or "Invalid".
const VERBOSE_NOISE = /^(?:Loading IANA PEN Registry|Running Get VSO Capabilities|Invalid completion code received|Discovered IPMB address|Get HPM\.x Capabilities request failed|>> |<< |$)/;

/** Reads a failed ipmitool run's stderr. */
export function classifyIpmitoolFailure(stderr: string): IpmitoolFailure {
  const lines = stderr.split('\n').map((line) => line.trim());
  for (const rule of FAILURE_RULES) {
    const line = lines.find((l) => rule.pattern.test(l));
    if (line !== undefined) return { kind: rule.kind, detail: line };
  }
  const meaningful = lines.filter((l) => !VERBOSE_NOISE.test(l));
  return { kind: 'unknown', detail: meaningful.at(-1) ?? '(no output)' };
}

/** Where a failure happened, for the error: the BMC, the operation, ipmitool's exit code. */
export interface FailureContext {
  address: string;
  operation: string;
  status?: number;
}

export interface AnsweredFailure {
  kind: Exclude<IpmitoolFailureKind, 'no-answer'>;
  detail: string;
}

/**
 * The typed error for a failure in which the BMC (or the resolver) said something; a
 * silence needs a presence ping first, see silenceError. `host` names what could not be
 * resolved; `redact` cuts the password out of ipmitool's words.
 */
export function answeredFailureError(failure: AnsweredFailure, command: string, host: string, ctx: FailureContext, redact: (text: string) => string): BmcError {
  const said = saidBy(failure, redact);
  switch (failure.kind) {
    case 'busy':
      return new BmcRefusedError(`the BMC is busy (${said})`, { ...ctx, transient: true, hint: 'the BMC may have too many open sessions; it usually recovers by itself' });
    case 'auth':
      return /privilege|role/i.test(failure.detail)
        ? new BmcAuthError(`the BMC refused the ADMINISTRATOR privilege (${said})`, { ...ctx, hint: "give the BMC user the ADMINISTRATOR privilege, on the user and on the LAN channel's limit" })
        : new BmcAuthError(`the BMC refused the login (${said})`, ctx);
    case 'unresolved':
      return new BmcUnreachableError(`cannot resolve ${host} (${said})`, ctx);
    case 'no-v2':
      return new BmcProtocolError(`the BMC does not speak IPMI 2.0 / RMCP+ (${said})`, { ...ctx, hint: 'enable IPMI 2.0 (lanplus) on the BMC; IPMI 1.5 is not used' });
    case 'refused':
      return new BmcRefusedError(`the BMC refused "${command}" (${said})`, ctx);
    case 'unsupported':
      return new BmcUnsupportedError(`the BMC does not support "${command}" (${said})`, ctx);
    case 'cipher':
    case 'unknown':
      return new BmcProtocolError(`ipmitool failed on "${command}" with exit code ${ctx.status ?? 'none'} (${said})`, ctx);
  }
}

/** "ipmitool said ..." with the line that decided the failure. */
export function saidBy(failure: IpmitoolFailure, redact: (text: string) => string): string {
  return `ipmitool said ${quote(redact(failure.detail))}`;
}

/**
 * ipmitool got nothing back (`what` says how long it waited or what it printed); the
 * presence ping's result says whether anything is there at all.
 */
export function silenceError(probe: ProbeResult, what: string, where: { host: string; port: number }, ctx: FailureContext): BmcError {
  switch (probe) {
    case 'refused':
      return new BmcUnreachableError(`${what}; UDP port ${where.port} is closed (ICMP port unreachable): no BMC listens there`, ctx);
    case 'no-route':
      return new BmcUnreachableError(`${what}; there is no route to ${where.host}`, ctx);
    case 'unresolved':
      return new BmcUnreachableError(`${what}; cannot resolve ${where.host}`, ctx);
    case 'answered':
      return new BmcTimeoutError(`${what}; the BMC answers an RMCP ping, so its IPMI service is busy or hung`, { ...ctx, hint: 'if this lasts, reset the BMC (ipmitool mc reset cold from a working host, or its web UI)' });
    case 'silent':
      return new BmcTimeoutError(`${what}; not even an RMCP ping is answered`, {
        ...ctx,
        hint: `the BMC is hung or unpowered, or packets to UDP port ${where.port} are dropped; check the address and the BMC network`,
      });
  }
}

/** Text from ipmitool or the BMC on one line, cut at 200 characters, in quotes. */
export function quote(text: string): string {
  const oneLine = text.trim().replace(/\s*\n\s*/g, ' | ');
  return JSON.stringify(oneLine.length > 200 ? `${oneLine.slice(0, 200)}...` : oneLine);
}

/**
 * A child AbortController that aborts with its parents. Unlike AbortSignal.any, the link
 * is removed explicitly when the child's work is done, so that a long-lived parent (an
 * informer's or elector's lifetime) does not collect one listener per request.
 */
export interface LinkedAbort {
  controller: AbortController;
  signal: AbortSignal;
  /** Unlinks from the parents; call when the child's work is over. */
  dispose(): void;
}

export function linkedAbort(...parents: (AbortSignal | undefined)[]): LinkedAbort {
  const controller = new AbortController();
  const links: (() => void)[] = [];
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      controller.abort(parent.reason);
      break;
    }
    const onAbort = (): void => controller.abort(parent.reason);
    parent.addEventListener('abort', onAbort, { once: true });
    links.push(() => parent.removeEventListener('abort', onAbort));
  }
  return {
    controller,
    signal: controller.signal,
    dispose: () => {
      for (const unlink of links.splice(0)) unlink();
    },
  };
}

/**
 * The API group and version, in a module of plain constants: processes that only name the
 * API (the node agent) import this instead of the schemas, and so do not load TypeBox.
 */
export const GROUP = 'autoscaling.bamel.io';
export const VERSION = 'v1alpha1';

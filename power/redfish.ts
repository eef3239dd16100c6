/** The Redfish power driver; its parts live in power/redfish/. */
export { RedfishDriver, type RedfishDriverOptions } from './redfish/driver.js';
export type { RetryPolicy } from './redfish/auth.js';

import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../schema-helpers.js';

/**
 * The energy part of the BareMetalAutoscaler status: each machine's draw
 * (status.machines[].power) and the running energy account (status.energy). Part of the
 * one API source (baremetalautoscaler.ts embeds them); kept compact, since a status holds
 * thousands of machines.
 */

/** Where a machine's watts came from: a BMC reading (by source), or the inventory's figures by phase. */
export const PowerSourceValues = ['redfish-powersubsystem', 'redfish-environmentmetrics', 'redfish-power', 'ipmi-dcmi', 'inventory'] as const;
export type PowerSource = (typeof PowerSourceValues)[number];

export const MachinePowerSchema = Type.Object(
  {
    watts: Type.Number({ minimum: 0, description: 'What the machine draws, in watts.' }),
    observedAt: Type.String({ format: 'date-time', description: 'When the BMC reported it; for source inventory, when the machine entered its phase.' }),
    source: StringEnum(PowerSourceValues, {
      description:
        'redfish-powersubsystem, redfish-environmentmetrics, redfish-power (the deprecated Power resource) or ipmi-dcmi: read from the BMC; inventory: the BMC offers no reading, so the inventory figures stand in (0 when off, maxWatts while booting, idleWatts when on).',
    }),
  },
  { description: "The machine's power draw at the last reading (in a fleet of more than 500 machines, only in the metric bamel_machine_power_watts)." },
);

export const EnergyMethodValues = ['measured', 'inventory', 'mixed'] as const;

export const EnergyStatusSchema = Type.Object(
  {
    since: Type.String({ format: 'date-time', description: 'When the account began (the first reconcile that wrote it).' }),
    consumedKWh: Type.Number({ minimum: 0, description: 'Energy the managed machines drew since then, in kWh: each machine’s watts integrated over time.' }),
    savedKWh: Type.Number({
      description: 'Energy saved since then, in kWh: what the machines would have drawn idle (inventory idleWatts) while they were off, minus what they drew while booting (the cost of their power cycles). Negative while power cycles cost more than they saved.',
    }),
    method: StringEnum(EnergyMethodValues, {
      description: 'Where the watts of the last interval came from: measured (every machine’s BMC reading), inventory (the inventory figures by phase) or mixed.',
    }),
    updatedAt: Type.String({ format: 'date-time', description: 'The end of the last interval added to the account (a new leader continues from here).' }),
  },
  { description: 'The energy account of the managed machines (see the README for the method).' },
);

export type MachinePower = Static<typeof MachinePowerSchema>;
export type EnergyStatus = Static<typeof EnergyStatusSchema>;
export type EnergyMethod = (typeof EnergyMethodValues)[number];

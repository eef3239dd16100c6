import { loadInputs } from './cmd/simulate.js';
import { simulate } from './sim/simulate/index.js';
const DIR = 'test/fixtures/simulate';
const inputs = await loadInputs({ trace: `${DIR}/small.csv`, inventory: `${DIR}/inventory.yaml`, autoscaler: `${DIR}/autoscaler.yaml` });
const r = await simulate({ ...inputs, policy: 'bamel', seed: 3 });
console.log(JSON.stringify(r.summary), JSON.stringify(r.details));
const waits = r.timeline.filter((s) => s.pendingPods > 0).map((s) => `${s.minute}:${s.pendingPods}/${s.machinesOn}`);
console.log(waits.join(' '));

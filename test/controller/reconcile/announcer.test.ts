import t from 'tap';
import type { EventRecorder, EventType, InvolvedObject } from '../../../kube/events.js';
import { Announcer } from '../../../controller/reconcile/announcer.js';

const A: InvolvedObject = { apiVersion: 'autoscaling.bamel.io/v1alpha1', kind: 'BareMetalAutoscaler', name: 'a' };
const B: InvolvedObject = { ...A, name: 'b' };

function recording(): { lines: string[]; announcer: Announcer } {
  const lines: string[] = [];
  const recorder = { emit: (obj: InvolvedObject, type: EventType, reason: string, message: string) => lines.push(`${obj.name} ${type} ${reason}: ${message}`) } as unknown as EventRecorder;
  return { lines, announcer: new Announcer(recorder) };
}

t.test('a standing fact is announced once per distinct message per topic', async (t) => {
  const { lines, announcer } = recording();
  announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', '2 pending pod(s) wait: maxMachines (3) reached');
  announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', '2 pending pod(s) wait: maxMachines (3) reached');
  t.same(lines, ['a Normal ScalingLimited: 2 pending pod(s) wait: maxMachines (3) reached']);
  announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', '3 pending pod(s) wait: maxMachines (3) reached');
  announcer.announce('a', A, 'limited', 'Warning', 'Other', '3 pending pod(s) wait: maxMachines (3) reached');
  announcer.announce('a', A, 'inventory', 'Warning', 'InventoryNotFound', 'gone');
  announcer.announce('b', B, 'limited', 'Normal', 'ScalingLimited', '3 pending pod(s) wait: maxMachines (3) reached');
  t.same(lines.slice(1), [
    'a Normal ScalingLimited: 3 pending pod(s) wait: maxMachines (3) reached',
    'a Warning Other: 3 pending pod(s) wait: maxMachines (3) reached',
    'a Warning InventoryNotFound: gone',
    'b Normal ScalingLimited: 3 pending pod(s) wait: maxMachines (3) reached',
  ], 'a new message, a new reason, another topic, another autoscaler');
});

t.test('a fact that stopped holding is announced again when it holds again', async (t) => {
  const { lines, announcer } = recording();
  const say = (): void => announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', 'x');
  say();
  announcer.clear('a', 'limited');
  say();
  say();
  t.equal(lines.length, 2);
});

t.test('clearExcept keeps the topics still true under the prefix, and no other prefix is touched', async (t) => {
  const { lines, announcer } = recording();
  const blocked = (m: string): void => announcer.announce('a', A, `blocked/${m}`, 'Normal', 'ScaleDownBlocked', `${m} stays on`);
  blocked('m1');
  blocked('m2');
  announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', 'x');
  announcer.clearExcept('a/blocked/', new Set(['m2']));
  blocked('m1');
  blocked('m2');
  announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', 'x');
  t.same(lines, ['a Normal ScaleDownBlocked: m1 stays on', 'a Normal ScaleDownBlocked: m2 stays on', 'a Normal ScalingLimited: x', 'a Normal ScaleDownBlocked: m1 stays on']);
});

t.test('once() runs the emitter only when the text changed; pod topics go with their pods', async (t) => {
  const { announcer } = recording();
  let runs = 0;
  const emit = (): void => {
    runs++;
  };
  t.equal(announcer.once('pod/u1', 'a: no machine', emit), true);
  t.equal(announcer.once('pod/u1', 'a: no machine', emit), false);
  t.equal(announcer.once('pod/u2', 'a: no machine', emit), true);
  announcer.prunePods(new Set(['u2']));
  t.equal(announcer.once('pod/u1', 'a: no machine', emit), true, 'no longer pending: forgotten');
  t.equal(announcer.once('pod/u2', 'a: no machine', emit), false, 'still pending: kept');
  t.equal(runs, 3);
});

t.test("forgetting an autoscaler drops its topics, not another's", async (t) => {
  const { lines, announcer } = recording();
  announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', 'x');
  announcer.announce('ab', B, 'limited', 'Normal', 'ScalingLimited', 'x');
  announcer.forgetAutoscaler('a');
  announcer.announce('a', A, 'limited', 'Normal', 'ScalingLimited', 'x');
  announcer.announce('ab', B, 'limited', 'Normal', 'ScalingLimited', 'x');
  t.equal(lines.length, 3, "a's topic again; ab's kept");
});

t.test(
  "an autoscaler named pod keeps its topics apart from the pods' topics",
  {
  },
  async (t) => {
    const { lines, announcer } = recording();
    announcer.announce('pod', A, 'limited', 'Normal', 'ScalingLimited', 'x');
    announcer.prunePods(new Set());
    announcer.announce('pod', A, 'limited', 'Normal', 'ScalingLimited', 'x');
    t.equal(lines.length, 1, 'pruning pods does not touch the autoscaler named pod');
    let runs = 0;
    announcer.once('pod/u1', 'text', () => runs++);
    announcer.forgetAutoscaler('pod');
    announcer.once('pod/u1', 'text', () => runs++);
    t.equal(runs, 1, 'forgetting the autoscaler named pod does not forget the pods');
  },
);

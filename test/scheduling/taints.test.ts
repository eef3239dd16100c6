import t from 'tap';
import { BLOCKING_EFFECTS, formatTaint, toleratesTaint, untoleratedTaints, type Taint, type Toleration } from '../../scheduling/taints.js';

// Cases from https://kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration/
// and the rules of Toleration.ToleratesTaint.
t.test('a toleration tolerates a taint by key, operator, value and effect', async (t) => {
  const key1: Taint = { key: 'key1', value: 'value1', effect: 'NoSchedule' };
  const cases: Array<[string, Toleration, Taint, boolean]> = [
    ['Equal with the same key, value and effect', { key: 'key1', operator: 'Equal', value: 'value1', effect: 'NoSchedule' }, key1, true],
    ['the operator defaults to Equal', { key: 'key1', value: 'value1', effect: 'NoSchedule' }, key1, true],
    ['Equal with another value', { key: 'key1', operator: 'Equal', value: 'value2', effect: 'NoSchedule' }, key1, false],
    ['Equal without a value does not match a valued taint', { key: 'key1', operator: 'Equal', effect: 'NoSchedule' }, key1, false],
    ['Equal with an empty value matches a taint without one', { key: 'key1', operator: 'Equal', value: '', effect: 'NoSchedule' }, { key: 'key1', effect: 'NoSchedule' }, true],
    ['Exists matches any value', { key: 'key1', operator: 'Exists', effect: 'NoSchedule' }, key1, true],
    ['Exists matches a taint without a value', { key: 'key1', operator: 'Exists', effect: 'NoSchedule' }, { key: 'key1', effect: 'NoSchedule' }, true],
    ['Exists ignores a value it should not have', { key: 'key1', operator: 'Exists', value: 'other', effect: 'NoSchedule' }, key1, true],
    ['another key', { key: 'key2', operator: 'Exists', effect: 'NoSchedule' }, key1, false],
    ['another effect', { key: 'key1', operator: 'Equal', value: 'value1', effect: 'NoExecute' }, key1, false],
    ['an empty effect matches NoSchedule', { key: 'key1', operator: 'Exists' }, key1, true],
    ['an empty effect matches NoExecute', { key: 'key1', operator: 'Exists' }, { key: 'key1', value: 'value1', effect: 'NoExecute' }, true],
    ['an empty effect matches PreferNoSchedule', { key: 'key1', value: 'value1' }, { key: 'key1', value: 'value1', effect: 'PreferNoSchedule' }, true],
    ['an empty key with Exists tolerates everything', { operator: 'Exists' }, { key: 'anything', value: 'x', effect: 'NoExecute' }, true],
    ['an empty key with Exists and an effect tolerates only that effect', { operator: 'Exists', effect: 'NoSchedule' }, { key: 'anything', effect: 'NoExecute' }, false],
    ['an empty key with Exists and an effect tolerates every key with it', { operator: 'Exists', effect: 'NoSchedule' }, key1, true],
    // API validation forbids an empty key with Equal; ToleratesTaint still compares the values.
    ['an empty key with Equal compares values on every key', { operator: 'Equal', value: 'value1' }, key1, true],
    ['an unknown operator tolerates nothing', { key: 'key1', operator: 'In', value: 'value1' }, key1, false],
    ['the operator is case-sensitive', { key: 'key1', operator: 'exists' }, key1, false],
    ['Gt: the taint value is greater', { key: 'sla', operator: 'Gt', value: '950' }, { key: 'sla', value: '999', effect: 'NoSchedule' }, true],
    ['Gt: the taint value is equal', { key: 'sla', operator: 'Gt', value: '950' }, { key: 'sla', value: '950', effect: 'NoSchedule' }, false],
    ['Gt: the taint value is smaller', { key: 'sla', operator: 'Gt', value: '950' }, { key: 'sla', value: '900', effect: 'NoSchedule' }, false],
    ['Lt: the taint value is smaller', { key: 'sla', operator: 'Lt', value: '950' }, { key: 'sla', value: '-1', effect: 'NoSchedule' }, true],
    ['Lt: the taint value is greater', { key: 'sla', operator: 'Lt', value: '950' }, { key: 'sla', value: '951', effect: 'NoSchedule' }, false],
    ['Gt: a taint value that is not an integer', { key: 'sla', operator: 'Gt', value: '1' }, { key: 'sla', value: '2.5', effect: 'NoSchedule' }, false],
    ['Gt: a toleration value that is not an integer', { key: 'sla', operator: 'Gt', value: 'high' }, { key: 'sla', value: '2', effect: 'NoSchedule' }, false],
    ['Lt: a taint without a value', { key: 'sla', operator: 'Lt', value: '5' }, { key: 'sla', effect: 'NoSchedule' }, false],
  ];
  for (const [name, toleration, taint, tolerated] of cases) t.equal(toleratesTaint(toleration, taint), tolerated, name);
});

t.test('only NoSchedule and NoExecute taints keep a pod off', async (t) => {
  const prefer: Taint = { key: 'spot', value: 'true', effect: 'PreferNoSchedule' };
  const noSchedule: Taint = { key: 'gpu', value: 'true', effect: 'NoSchedule' };
  const noExecute: Taint = { key: 'maintenance', effect: 'NoExecute' };

  t.same(untoleratedTaints([], [prefer]), [], 'PreferNoSchedule does not block');
  t.same(untoleratedTaints(undefined, [noSchedule, prefer, noExecute]), [noSchedule, noExecute], 'NoSchedule and NoExecute block, in order');
  t.same(untoleratedTaints([{ key: 'gpu', operator: 'Exists' }], [noSchedule, noExecute]), [noExecute]);
  t.same(untoleratedTaints([{ operator: 'Exists' }], [noSchedule, noExecute, prefer]), []);
  t.same(untoleratedTaints([{ key: 'gpu', operator: 'Exists', effect: 'NoExecute' }], [noSchedule]), [noSchedule], 'a toleration for another effect');
  t.same(untoleratedTaints([], undefined), []);
  t.same(untoleratedTaints([], [noSchedule, prefer], ['PreferNoSchedule']), [prefer], 'effects can be chosen, e.g. for scoring');
  t.same([...BLOCKING_EFFECTS].sort(), ['NoExecute', 'NoSchedule']);
});

t.test('taints print as Kubernetes prints them', async (t) => {
  t.equal(formatTaint({ key: 'gpu', value: 'true', effect: 'NoSchedule' }), 'gpu=true:NoSchedule');
  t.equal(formatTaint({ key: 'dedicated', effect: 'NoExecute' }), 'dedicated:NoExecute');
  t.equal(formatTaint({ key: 'dedicated', value: '', effect: 'NoExecute' }), 'dedicated:NoExecute');
});

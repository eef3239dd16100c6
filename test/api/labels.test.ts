import t from 'tap';
import {
  isExtendedResourceName,
  validateDns1123Subdomain,
  validateLabelKey,
  validateLabelValue,
  validateResourceName,
  validateTaint,
  validateTaintEffect,
  validateTaintKey,
} from '../../api/labels.js';

const DNS_RULE = 'use lowercase letters, digits, "-" and ".", with each dot-separated part starting and ending with a letter or digit (e.g. rack-a-01 or bmc.example.com)';
const NAME_RULE = 'use letters, digits, "-", "_" and ".", starting and ending with a letter or digit';

t.test('DNS-1123 subdomains', async (t) => {
  for (const ok of ['rack-a-01', 'a', '0', 'node.example.com', 'a-b.c-d', 'x'.repeat(253)]) t.equal(validateDns1123Subdomain(ok), undefined, ok);
  t.equal(validateDns1123Subdomain(''), `"" is not a valid DNS-1123 subdomain: it is empty; ${DNS_RULE}`);
  t.equal(validateDns1123Subdomain('Rack-A'), `"Rack-A" is not a valid DNS-1123 subdomain: it contains uppercase letters; ${DNS_RULE}`);
  t.equal(validateDns1123Subdomain('rack_a'), `"rack_a" is not a valid DNS-1123 subdomain: it contains "_"; ${DNS_RULE}`);
  t.equal(validateDns1123Subdomain('-rack'), `"-rack" is not a valid DNS-1123 subdomain: a dot-separated part is empty or starts or ends with "-"; ${DNS_RULE}`);
  t.equal(validateDns1123Subdomain('rack..a'), `"rack..a" is not a valid DNS-1123 subdomain: a dot-separated part is empty or starts or ends with "-"; ${DNS_RULE}`);
  t.equal(validateDns1123Subdomain('a.-b'), `"a.-b" is not a valid DNS-1123 subdomain: a dot-separated part is empty or starts or ends with "-"; ${DNS_RULE}`);
  t.match(validateDns1123Subdomain('x'.repeat(254)), /it is 254 characters long; the limit is 253$/);
});

t.test('label keys', async (t) => {
  for (const ok of ['rack', 'topology.kubernetes.io/zone', 'example.com/Tier_1', 'a', 'A.b-c_d', `${'x'.repeat(253)}/${'y'.repeat(63)}`]) {
    t.equal(validateLabelKey(ok), undefined, ok);
  }
  t.equal(validateLabelKey(''), '"" is not a valid label key: it is empty');
  t.equal(validateLabelKey('rack a'), `"rack a" is not a valid label key: it contains " "; ${NAME_RULE}`);
  t.equal(validateLabelKey('-rack'), `"-rack" is not a valid label key: it must start and end with a letter or digit; ${NAME_RULE}`);
  t.equal(validateLabelKey('a/b/c'), '"a/b/c" is not a valid label key: it contains more than one "/"; use an optional DNS prefix, "/", and a name, e.g. example.com/rack');
  t.equal(validateLabelKey('/rack'), '"/rack" is not a valid label key: the prefix before "/" is empty; remove the "/" or add a DNS prefix such as example.com');
  t.equal(validateLabelKey('example.com/'), '"example.com/" is not a valid label key: the name after "/" is empty');
  t.equal(
    validateLabelKey('Example.com/rack'),
    `"Example.com/rack" is not a valid label key: the prefix "Example.com" is not a DNS subdomain: it contains uppercase letters; ${DNS_RULE}`,
  );
  t.equal(validateLabelKey(`example.com/${'y'.repeat(64)}`), `"example.com/${'y'.repeat(64)}" is not a valid label key: the name "${'y'.repeat(64)}" is 64 characters long; the limit is 63`);
  t.equal(validateLabelKey('example.com/a b'), `"example.com/a b" is not a valid label key: the name "a b" contains " "; ${NAME_RULE}`);
});

t.test('label values', async (t) => {
  for (const ok of ['', 'a', 'gold', 'v1.2_3-x', 'x'.repeat(63)]) t.equal(validateLabelValue(ok), undefined, JSON.stringify(ok));
  t.equal(validateLabelValue('gold plated'), `"gold plated" is not a valid label value: it contains " "; ${NAME_RULE}`);
  t.equal(validateLabelValue('a/b'), `"a/b" is not a valid label value: it contains "/"; ${NAME_RULE}`);
  t.equal(validateLabelValue('x'.repeat(64)), `"${'x'.repeat(64)}" is not a valid label value: it is 64 characters long; the limit is 63`);
  t.equal(validateLabelValue('.x'), `".x" is not a valid label value: it must start and end with a letter or digit; ${NAME_RULE}`);
});

t.test('taints', async (t) => {
  t.equal(validateTaint({ key: 'gpu', value: 'true', effect: 'NoSchedule' }), undefined);
  t.equal(validateTaint({ key: 'example.com/dedicated', effect: 'NoExecute' }), undefined);
  t.equal(validateTaint({ key: 'gpu', value: '', effect: 'PreferNoSchedule' }), undefined);
  t.equal(validateTaintEffect('NoScheduled'), '"NoScheduled" is not a taint effect; use NoSchedule, PreferNoSchedule or NoExecute');
  t.equal(validateTaintKey('gpu card'), `"gpu card" is not a valid taint key: it contains " "; ${NAME_RULE}`);
  t.equal(validateTaint({ key: 'gpu', effect: 'Never' }), '"Never" is not a taint effect; use NoSchedule, PreferNoSchedule or NoExecute');
  t.equal(validateTaint({ key: 'gpu', value: 'a b', effect: 'NoSchedule' }), `"a b" is not a valid label value: it contains " "; ${NAME_RULE}`);
  t.equal(validateTaint({ key: '', value: 'a b', effect: 'x' }), '"" is not a valid taint key: it is empty', 'reports the key first');
});

t.test('resource names', async (t) => {
  for (const ok of ['cpu', 'memory', 'ephemeral-storage', 'pods', 'hugepages-2Mi', 'hugepages-1Gi', 'nvidia.com/gpu', 'example.com/fpga']) {
    t.equal(validateResourceName(ok), undefined, ok);
  }
  t.equal(
    validateResourceName('gpu'),
    'unknown resource "gpu"; resources without a domain prefix must be cpu, memory, ephemeral-storage, pods or hugepages-<size> (e.g. hugepages-2Mi), and extended resources take a domain prefix (e.g. nvidia.com/gpu)',
  );
  t.match(validateResourceName('hugepages-big'), /^unknown resource "hugepages-big"/);
  t.equal(validateResourceName('nvidia.com/g p u'), `"nvidia.com/g p u" is not a valid resource name: the name "g p u" contains " "; ${NAME_RULE}`);
  t.equal(isExtendedResourceName('nvidia.com/gpu'), true);
  t.equal(isExtendedResourceName('cpu'), false);
  t.equal(isExtendedResourceName('kubernetes.io/something'), false);
  t.equal(isExtendedResourceName('requests.example.com/x'), false);
});

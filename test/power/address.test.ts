import t from 'tap';
import { BMC_SCHEMES, BmcAddressError, bmcEndpoint, parseBmcAddress, sameBmcEndpoint } from '../../power/address.js';

function errorOf(address: string): string | undefined {
  try {
    parseBmcAddress(address);
  } catch (err) {
    if (!(err instanceof BmcAddressError)) throw err;
    return err.message;
  }
  return undefined;
}

const SCHEME_LIST =
  'ipmi, redfish, redfish+http, redfish+https, idrac-redfish, idrac-redfish+http, idrac-redfish+https, ilo5-redfish, ilo5-redfish+http, ilo5-redfish+https';

t.test('lists the Metal3 schemes bamel drives', async (t) => {
  t.equal(BMC_SCHEMES.join(', '), SCHEME_LIST);
});

t.test('ipmi addresses', async (t) => {
  t.same(parseBmcAddress('ipmi://10.0.0.12'), { driver: 'ipmi', vendor: 'generic', scheme: 'ipmi', host: '10.0.0.12', port: 623 });
  t.same(parseBmcAddress('ipmi://127.0.0.1:9001'), { driver: 'ipmi', vendor: 'generic', scheme: 'ipmi', host: '127.0.0.1', port: 9001 });
  t.same(parseBmcAddress('IPMI://BMC-01.Example.com/'), { driver: 'ipmi', vendor: 'generic', scheme: 'ipmi', host: 'bmc-01.example.com', port: 623 });
  t.same(parseBmcAddress('10.0.0.12:6230'), { driver: 'ipmi', vendor: 'generic', scheme: 'ipmi', host: '10.0.0.12', port: 6230 }, 'a bare host is IPMI, as in Metal3');
  t.same(parseBmcAddress('ipmi://[fd00::12]:624'), { driver: 'ipmi', vendor: 'generic', scheme: 'ipmi', host: 'fd00::12', port: 624 });
  t.same(parseBmcAddress('ipmi://[FD00::12]'), { driver: 'ipmi', vendor: 'generic', scheme: 'ipmi', host: 'fd00::12', port: 623 });
  t.equal(errorOf('ipmi://10.0.0.12/redfish/v1'), 'ipmi addresses take no path; use ipmi://host[:port]');
});

t.test('redfish addresses', async (t) => {
  t.same(parseBmcAddress('redfish://10.0.0.11/redfish/v1/Systems/1'), {
    driver: 'redfish',
    vendor: 'generic',
    scheme: 'redfish',
    host: '10.0.0.11',
    port: 443,
    protocol: 'https',
    systemPath: '/redfish/v1/Systems/1',
    baseUrl: 'https://10.0.0.11:443',
  });
  t.same(parseBmcAddress('redfish+http://127.0.0.1:8001/redfish/v1/Systems/abc-123/'), {
    driver: 'redfish',
    vendor: 'generic',
    scheme: 'redfish+http',
    host: '127.0.0.1',
    port: 8001,
    protocol: 'http',
    systemPath: '/redfish/v1/Systems/abc-123',
    baseUrl: 'http://127.0.0.1:8001',
  });
  t.same(parseBmcAddress('redfish+http://bmc'), {
    driver: 'redfish',
    vendor: 'generic',
    scheme: 'redfish+http',
    host: 'bmc',
    port: 80,
    protocol: 'http',
    baseUrl: 'http://bmc:80',
  });
  for (const root of ['redfish+https://bmc', 'redfish+https://bmc/', 'redfish+https://bmc/redfish/v1', 'redfish+https://bmc/redfish/v1/']) {
    const parsed = parseBmcAddress(root);
    t.equal(parsed.systemPath, undefined, `${root} means the only system`);
    t.notOk('systemPath' in parsed, 'no explicit undefined');
  }
  t.same(parseBmcAddress('redfish+https://[fd00::11]:8443/redfish/v1/Systems/1'), {
    driver: 'redfish',
    vendor: 'generic',
    scheme: 'redfish+https',
    host: 'fd00::11',
    port: 8443,
    protocol: 'https',
    systemPath: '/redfish/v1/Systems/1',
    baseUrl: 'https://[fd00::11]:8443',
  });
  t.equal(errorOf('redfish://bmc/Systems/1'), "the system path must start with /redfish/v1/ (e.g. /redfish/v1/Systems/1), or be left out to use the BMC's only system");
  t.equal(errorOf('redfish://bmc/redfish/v1/Systems/a b'), 'the system path contains " "; percent-encode it');
});

t.test('vendor schemes', async (t) => {
  const idrac = parseBmcAddress('idrac-redfish://10.0.0.20/redfish/v1/Systems/System.Embedded.1');
  t.match(idrac, { driver: 'redfish', vendor: 'idrac', scheme: 'idrac-redfish', protocol: 'https', port: 443, systemPath: '/redfish/v1/Systems/System.Embedded.1' });
  t.match(parseBmcAddress('idrac-redfish+http://10.0.0.20'), { vendor: 'idrac', protocol: 'http', port: 80 });
  t.match(parseBmcAddress('idrac-redfish+https://10.0.0.20:8443'), { vendor: 'idrac', protocol: 'https', port: 8443 });
  t.match(parseBmcAddress('ilo5-redfish://10.0.0.30/redfish/v1/Systems/1'), { vendor: 'ilo5', protocol: 'https', scheme: 'ilo5-redfish' });
  t.match(parseBmcAddress('ilo5-redfish+http://10.0.0.30'), { vendor: 'ilo5', protocol: 'http' });
  t.match(parseBmcAddress('ilo5-redfish+https://10.0.0.30'), { vendor: 'ilo5', protocol: 'https' });
  for (const scheme of BMC_SCHEMES) t.equal(parseBmcAddress(`${scheme}://h`).scheme, scheme);
});

t.test('says what is wrong with a bad address', async (t) => {
  t.equal(errorOf('ipmii://10.0.0.17:623'), `unknown scheme "ipmii"; expected one of ${SCHEME_LIST}`);
  t.equal(errorOf('https://10.0.0.11/redfish/v1/Systems/1'), `unknown scheme "https"; expected one of ${SCHEME_LIST}; for power control use redfish+https://`);
  t.equal(errorOf('idrac://10.0.0.20'), `unknown scheme "idrac"; expected one of ${SCHEME_LIST}; for power control use idrac-redfish://`);
  t.equal(errorOf('redfish-virtualmedia://10.0.0.20'), `unknown scheme "redfish-virtualmedia"; expected one of ${SCHEME_LIST}; for power control use redfish://`);
  t.equal(errorOf('://10.0.0.20'), `missing scheme; expected one of ${SCHEME_LIST}`);
  t.equal(errorOf(''), 'missing address; e.g. ipmi://10.0.0.12:623 or redfish+https://10.0.0.11/redfish/v1/Systems/1');
  t.equal(errorOf(' ipmi://h'), 'the address has leading or trailing spaces; remove them');
  t.equal(errorOf('ipmi://'), 'missing host; e.g. ipmi://10.0.0.12:623 or redfish+https://10.0.0.11/redfish/v1/Systems/1');
  t.equal(errorOf('redfish://:443/redfish/v1'), 'missing host; e.g. ipmi://10.0.0.12:623 or redfish+https://10.0.0.11/redfish/v1/Systems/1');
  t.equal(errorOf('ipmi://10.0.0.12:70000'), 'port 70000 out of range; use 1 to 65535');
  t.equal(errorOf('ipmi://10.0.0.12:0'), 'port 0 out of range; use 1 to 65535');
  t.equal(errorOf('ipmi://10.0.0.12:abc'), 'port "abc" is not a number');
  t.equal(errorOf('ipmi://10.0.0.12:'), 'empty port after ":"; remove the ":" or give a port number');
  t.equal(errorOf('ipmi://fd00::12'), 'IPv6 addresses must be in brackets, e.g. ipmi://[fd00::12]:623');
  t.equal(errorOf('ipmi://[fd00::12'), 'missing "]" after the IPv6 address');
  t.equal(errorOf('ipmi://[10.0.0.1]'), '"[10.0.0.1]" is not an IPv6 address');
  t.equal(errorOf('ipmi://[fd00::12]x'), 'unexpected text after "]"; expected ":port" or nothing');
  t.equal(errorOf('ipmi://10.0.0.300'), '"10.0.0.300" is not a valid IPv4 address');
  t.equal(errorOf('ipmi://bmc_01'), '"bmc_01" is not a valid host name or IP address');
  t.equal(errorOf('redfish://10.0.0.1/redfish/v1?x=1'), 'query strings and fragments ("?", "#") are not used; remove them');
  t.equal(errorOf('10.0.0.1/redfish/v1'), 'missing "://" after the scheme; e.g. ipmi://10.0.0.12:623 or redfish+https://10.0.0.11/redfish/v1/Systems/1');
});

t.test('never repeats credentials written into the address', async (t) => {
  const message = errorOf('redfish://admin:hunter2@10.0.0.11/redfish/v1/Systems/1');
  t.equal(message, 'the address contains credentials ("user:password@"); remove them and put them in the Secret named by credentialsSecret');
  t.notMatch(message ?? '', /hunter2|admin/);
});

t.test('endpoints: which addresses reach the same machine', async (t) => {
  const a = parseBmcAddress('redfish+http://127.0.0.1:8001/redfish/v1/Systems/a');
  const b = parseBmcAddress('redfish+http://127.0.0.1:8001/redfish/v1/Systems/b');
  const only = parseBmcAddress('redfish+http://127.0.0.1:8001');
  t.equal(bmcEndpoint(a), 'http://127.0.0.1:8001/redfish/v1/Systems/a');
  t.equal(bmcEndpoint(only), 'http://127.0.0.1:8001');
  t.equal(bmcEndpoint(parseBmcAddress('ipmi://[fd00::1]')), 'ipmi://[fd00::1]:623');
  t.equal(sameBmcEndpoint(a, b), false, 'two systems behind one Redfish service');
  t.equal(sameBmcEndpoint(a, parseBmcAddress('redfish+http://127.0.0.1:8001/redfish/v1/Systems/a/')), true);
  t.equal(sameBmcEndpoint(a, only), true, '"the only system" collides with any system on that BMC');
  t.equal(sameBmcEndpoint(parseBmcAddress('ipmi://10.0.0.1'), parseBmcAddress('ipmi://10.0.0.1:623')), true);
  t.equal(sameBmcEndpoint(parseBmcAddress('ipmi://10.0.0.1:9001'), parseBmcAddress('ipmi://10.0.0.1:9002')), false);
  t.equal(sameBmcEndpoint(parseBmcAddress('ipmi://bmc.example.com'), parseBmcAddress('ipmi://BMC.example.com')), true);
});

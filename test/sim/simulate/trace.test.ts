import t from 'tap';
import { parseTrace, TraceError } from '../../../sim/simulate/trace.js';

// The trace CSV of `bamel simulate`: every bad row is refused with its line and column.

function refused(text: string): TraceError {
  try {
    parseTrace(text, 'trace.csv');
  } catch (err) {
    if (err instanceof TraceError) return err;
    throw err;
  }
  throw new Error('the trace was accepted');
}

t.test('a valid trace: quantities, JSON columns, sorted by time (stable)', async (t) => {
  const pods = parseTrace(
    [
      'at,name,cpu,memory,duration,tolerations,nodeSelector',
      '10,b,0.5,512Mi,60,,',
      '0,a,2,4Gi,120.5,"[{""key"":""gpu"",""operator"":""Exists""}]","{""class"":""gpu""}"',
      '10,c,250m,1e9,0,,',
      '',
      '# a comment line',
    ].join('\n'),
  );
  t.same(
    pods.map((p) => [p.name, p.line, p.at, p.cpuMilli, p.duration]),
    [
      ['a', 3, 0, 2000n, 120.5],
      ['b', 2, 10, 500n, 60],
      ['c', 4, 10, 250n, 0],
    ],
  );
  t.equal(pods[0]?.memoryMilli, 4n * 1024n ** 3n * 1000n);
  t.same(pods[0]?.tolerations, [{ key: 'gpu', operator: 'Exists' }]);
  t.same(pods[0]?.nodeSelector, { class: 'gpu' });
  t.equal(pods[1]?.tolerations, undefined);
});

t.test('a missing column is named, at the header line', async (t) => {
  const e = refused('at,name,cpu,duration\n0,a,1,60\n');
  t.equal(e.line, 1);
  t.equal(e.column, 5);
  t.match(e.message, /^trace\.csv: line 1, column 5: missing column memory/);
});

t.test('a bad quantity is refused with its line and column', async (t) => {
  const e = refused('at,name,cpu,memory,duration\n0,a,1,1Gi,60\n5,b,1,lots,60\n');
  t.equal(e.line, 3);
  t.equal(e.column, 4);
  t.match(e.message, /line 3, column 4: memory: "lots" is not a valid quantity/);
  const cpu = refused('at,name,cpu,memory,duration\n0,a,-1,1Gi,60\n');
  t.match(cpu.message, /line 2, column 3: cpu: -1 is negative/);
});

t.test('a negative time or duration is refused', async (t) => {
  const at = refused('at,name,cpu,memory,duration\n-5,a,1,1Gi,60\n');
  t.match(at.message, /line 2, column 1: at: -5 is negative/);
  const d = refused('name,at,cpu,memory,duration\na,1,1,1Gi,-60\n');
  t.match(d.message, /line 2, column 5: duration: -60 is negative/);
  t.match(refused('at,name,cpu,memory,duration\nsoon,a,1,1Gi,60\n').message, /line 2, column 1: at: "soon" is not a number/);
});

t.test('other malformed rows: field count, JSON, names, unknown columns, CSV syntax', async (t) => {
  t.match(refused('at,name,cpu,memory,duration\n0,a,1,1Gi\n').message, /line 2/);
  t.match(refused('at,name,cpu,memory,duration,tolerations\n0,a,1,1Gi,60,[oops\n').message, /line 2, column 6: tolerations: not valid JSON/);
  t.match(refused('at,name,cpu,memory,duration,nodeSelector\n0,a,1,1Gi,60,"{""a"":1}"\n').message, /line 2, column 6: nodeSelector: the value of a must be a string/);
  t.match(refused('at,name,cpu,memory,duration\n0,a,1,1Gi,60\n1,a,1,1Gi,60\n').message, /line 3, column 2: name: "a" is already the name of the pod on line 2/);
  t.match(refused('at,name,cpu,memory,duration\n0,Bad_Name,1,1Gi,60\n').message, /line 2, column 2: name: "Bad_Name" is not a valid pod name/);
  t.match(refused('at,name,cpu,memory,duration,gpu\n0,a,1,1Gi,60,1\n').message, /line 1, column 6: unknown column "gpu"/);
  t.match(refused('at,name,cpu,memory,duration\n0,a,1,"1Gi,60\n').message, /line 2.*not valid CSV/);
  t.match(refused('').message, /line 1: the trace is empty/);
});

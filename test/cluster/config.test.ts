import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  configFromOptions,
  loadAgentConfig,
  parseAgentConfig,
  parseDurationMs,
  type AgentConfigInput,
  type ConfigFieldError,
} from '../../src/cluster/config.js';
import { HaError } from '../../src/errors.js';

const valid = `
nodeId: node-1
clusterId: payments
bindAddress: 0.0.0.0:7800
apiAddress: 127.0.0.1:9000
nodes:
  - node-1@127.0.0.1:7800
  - node-2:7801
  - node-3@[::1]:7802
learners: [node-3]
heartbeatInterval: 100ms
electionTimeout: 1s
tickInterval: 20ms
dataDir: /var/lib/anya-ha
tls:
  ca: /etc/anya-ha/ca.crt
  cert: /etc/anya-ha/node-1.crt
  key: /etc/anya-ha/node-1.key
logLevel: debug
requestTimeout: 2s
snapshotEntries: 500
historyBytesMax: 1048576
`;

const minimal = (extra = '', nodes = 'nodes: [node-1:7800, node-2:7801, node-3:7802]') => `
nodeId: node-1
bindAddress: 127.0.0.1:7800
${nodes}
dataDir: data
tls: { ca: certs/ca.crt, cert: certs/node-1.crt, key: certs/node-1.key }
${extra}
`;

/** Runs `fn`, expects HA_ERR_BAD_REQUEST, returns the per-field errors. */
function problemsOf(fn: () => unknown): ConfigFieldError[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof HaError, `expected HaError, got ${String(err)}`);
    assert.equal(err.code, 'HA_ERR_BAD_REQUEST');
    const errors = err.details.errors as ConfigFieldError[];
    assert.ok(errors.length > 0);
    for (const e of errors) assert.ok(err.message.includes(e.message), 'the message lists every problem');
    return errors;
  }
  assert.fail('expected the config to be refused');
}

function problemFor(errors: ConfigFieldError[], field: string): string {
  const found = errors.find((e) => e.field === field);
  assert.ok(found, `no error for field "${field}" in ${JSON.stringify(errors)}`);
  assert.ok(found.message.includes(`field "${field}"`), found.message);
  return found.message;
}

describe('parseAgentConfig', () => {
  it('reads every field of a full config, with id@host:port, host:port and bracketed IPv6 entries', () => {
    const c = parseAgentConfig(valid, '/etc/anya-ha/node.yaml');
    assert.deepEqual(c, {
      nodeId: 'node-1',
      clusterId: 'payments',
      bindHost: '0.0.0.0',
      bindPort: 7800,
      apiHost: '127.0.0.1',
      apiPort: 9000,
      nodes: [
        { id: 'node-1', host: '127.0.0.1', port: 7800, address: '127.0.0.1:7800' },
        { id: 'node-2', host: 'node-2', port: 7801, address: 'node-2:7801' },
        { id: 'node-3', host: '::1', port: 7802, address: '[::1]:7802' },
      ],
      learners: ['node-3'],
      heartbeatIntervalMs: 100,
      electionTimeoutMs: 1000,
      tickIntervalMs: 20,
      heartbeatTicks: 5,
      electionTicks: 50,
      dataDir: '/var/lib/anya-ha',
      tls: { ca: '/etc/anya-ha/ca.crt', cert: '/etc/anya-ha/node-1.crt', key: '/etc/anya-ha/node-1.key' },
      logLevel: 'debug',
      requestTimeoutMs: 2000,
      snapshotEntries: 500,
      historyBytesMax: 1048576,
    });
  });

  it('applies the defaults to omitted optional fields', () => {
    const c = parseAgentConfig(minimal(), '/srv/node.yaml');
    assert.equal(c.clusterId, 'anya-ha');
    assert.equal(c.apiHost, '127.0.0.1', 'the API listens on the host of bindAddress');
    assert.equal(c.apiPort, 8080);
    assert.deepEqual(c.learners, []);
    assert.equal(c.heartbeatIntervalMs, 50);
    assert.equal(c.electionTimeoutMs, 150);
    assert.equal(c.tickIntervalMs, 10);
    assert.equal(c.heartbeatTicks, 5);
    assert.equal(c.electionTicks, 15);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.requestTimeoutMs, 5000);
    assert.equal(c.snapshotEntries, 10_000);
    assert.equal(c.historyBytesMax, 256 * 1024 * 1024);
  });

  it('treats discovery.static.nodes exactly like nodes', () => {
    const flat = parseAgentConfig(minimal(), '/srv/node.yaml');
    const nested = parseAgentConfig(
      minimal('', 'discovery: { static: { nodes: [node-1:7800, node-2:7801, node-3:7802] } }'),
      '/srv/node.yaml',
    );
    assert.deepEqual(nested, flat);
  });

  it('resolves relative dataDir and tls paths against the config file directory', () => {
    const c = parseAgentConfig(minimal(), '/srv/anya/node-1/node.yaml');
    assert.equal(c.dataDir, '/srv/anya/node-1/data');
    assert.deepEqual(c.tls, {
      ca: '/srv/anya/node-1/certs/ca.crt',
      cert: '/srv/anya/node-1/certs/node-1.crt',
      key: '/srv/anya/node-1/certs/node-1.key',
    });
  });

  it('accepts a number as milliseconds for durations', () => {
    const c = parseAgentConfig(minimal('heartbeatInterval: 40\nelectionTimeout: 400'), '/srv/node.yaml');
    assert.equal(c.heartbeatIntervalMs, 40);
    assert.equal(c.electionTimeoutMs, 400);
  });

  it('refuses a config without nodeId, naming the field', () => {
    const errors = problemsOf(() => parseAgentConfig(minimal().replace('nodeId: node-1', ''), 'node.yaml'));
    assert.match(problemFor(errors, 'nodeId'), /^node\.yaml: field "nodeId": missing; expected a node id/);
  });

  it('refuses a bad duration with the field, the expected form and the value given', () => {
    const errors = problemsOf(() => parseAgentConfig(minimal('electionTimeout: fast'), 'node.yaml'));
    assert.equal(
      problemFor(errors, 'electionTimeout'),
      'node.yaml: field "electionTimeout": expected a duration like "50ms" or "1s", got "fast"',
    );
  });

  it('refuses an electionTimeout shorter than 3 heartbeats', () => {
    const errors = problemsOf(() =>
      parseAgentConfig(minimal('heartbeatInterval: 100ms\nelectionTimeout: 250ms'), 'node.yaml'),
    );
    assert.match(
      problemFor(errors, 'electionTimeout'),
      /at least 3 × heartbeatInterval \(300ms\), got "250ms"/,
    );
  });

  it('refuses a heartbeat below 5ms and an election timeout below 20ms', () => {
    const errors = problemsOf(() =>
      parseAgentConfig(minimal('heartbeatInterval: 4ms\nelectionTimeout: 15ms'), 'node.yaml'),
    );
    assert.match(problemFor(errors, 'heartbeatInterval'), /from 5ms/);
    assert.match(problemFor(errors, 'electionTimeout'), /from 20ms/);
  });

  it('refuses a tick that rounds the election timeout below 3 heartbeats', () => {
    // 50ms / 30ms rounds to 2 heartbeat ticks, 150ms / 30ms = 5 election ticks < 6.
    const errors = problemsOf(() =>
      parseAgentConfig(
        minimal('heartbeatInterval: 50ms\nelectionTimeout: 150ms\ntickInterval: 30ms'),
        'node.yaml',
      ),
    );
    assert.match(problemFor(errors, 'tickInterval'), /5 election ticks, 2 heartbeat ticks/);
  });

  it('refuses an unknown field and suggests the near miss', () => {
    const errors = problemsOf(() => parseAgentConfig(minimal('electionTimout: 1s'), 'node.yaml'));
    assert.match(problemFor(errors, 'electionTimout'), /unknown field; did you mean "electionTimeout"\?/);
  });

  it('refuses an unknown field inside tls', () => {
    const text = minimal().replace('key: certs/node-1.key', 'key: k, password: p');
    assert.match(
      problemFor(
        problemsOf(() => parseAgentConfig(text, 'node.yaml')),
        'tls.password',
      ),
      /unknown/,
    );
  });

  it('refuses a duplicate node id, naming the entry', () => {
    const nodes = 'nodes: [node-1:7800, node-2:7801, node-2@10.0.0.2:7801]';
    const errors = problemsOf(() => parseAgentConfig(minimal('', nodes), 'node.yaml'));
    assert.match(problemFor(errors, 'nodes[2]'), /a unique node id, but "node-2" is also at \[1\]/);
  });

  it('refuses a node list that does not include this node', () => {
    const errors = problemsOf(() =>
      parseAgentConfig(minimal('', 'nodes: [node-2:7801, node-3:7802]'), 'node.yaml'),
    );
    assert.match(problemFor(errors, 'nodes'), /includes this node "node-1", got \["node-2","node-3"\]/);
  });

  it('refuses ports outside 1..65535 in nodes and in addresses', () => {
    const errors = problemsOf(() =>
      parseAgentConfig(
        minimal('apiAddress: 127.0.0.1:0', 'nodes: [node-1:7800, node-2:65536]').replace(
          ':7800\n',
          ':99999\n',
        ),
        'node.yaml',
      ),
    );
    assert.match(problemFor(errors, 'nodes[1]'), /expected a port in 1\.\.65535, got "node-2:65536"/);
    assert.match(problemFor(errors, 'apiAddress'), /port in 1\.\.65535/);
    assert.match(problemFor(errors, 'bindAddress'), /port in 1\.\.65535/);
  });

  it('refuses giving both nodes and discovery', () => {
    const text = minimal('discovery: { static: { nodes: [node-1:7800] } }');
    assert.match(
      problemFor(
        problemsOf(() => parseAgentConfig(text, 'node.yaml')),
        'discovery',
      ),
      /not both/,
    );
  });

  it('refuses learners that are not in nodes', () => {
    const errors = problemsOf(() => parseAgentConfig(minimal('learners: [node-9]'), 'node.yaml'));
    assert.match(problemFor(errors, 'learners[0]'), /listed in "nodes", got "node-9"/);
  });

  it('reports malformed YAML with its line and column', () => {
    const errors = problemsOf(() =>
      parseAgentConfig('nodeId: node-1\nnodes: [a, b\ndataDir: x\n', 'node.yaml'),
    );
    assert.match(errors[0].message, /^node\.yaml: line \d+, column \d+: malformed YAML: /);
  });

  it('reports a duplicate key as malformed YAML', () => {
    const errors = problemsOf(() => parseAgentConfig(minimal('nodeId: node-2'), 'node.yaml'));
    assert.match(errors[0].message, /line 7, column 1: malformed YAML: .*unique/i);
  });

  it('reports several problems together in one error', () => {
    const text = minimal('heartbeatInterval: soon\nlogLevel: loud\nsnapshotEntries: 0').replace(
      'dataDir: data',
      '',
    );
    const fields = problemsOf(() => parseAgentConfig(text, 'node.yaml')).map((e) => e.field);
    assert.deepEqual(
      new Set(fields),
      new Set(['dataDir', 'heartbeatInterval', 'logLevel', 'snapshotEntries']),
    );
  });

  it('refuses a document that is not a mapping', () => {
    assert.match(problemsOf(() => parseAgentConfig('- a\n', 'node.yaml'))[0].message, /expected a mapping/);
    assert.match(problemsOf(() => parseAgentConfig('', 'node.yaml'))[0].message, /expected a mapping/);
  });
});

describe('loadAgentConfig', () => {
  it('reads a file and resolves relative paths against its directory', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anya-ha-config-'));
    try {
      writeFileSync(join(dir, 'node.yaml'), minimal());
      const c = loadAgentConfig(join(dir, 'node.yaml'));
      assert.equal(c.dataDir, join(dir, 'data'));
      assert.equal(c.tls.key, join(dir, 'certs/node-1.key'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unreadable file with HA_ERR_BAD_REQUEST naming the path', () => {
    const path = join(tmpdir(), 'anya-ha-no-such-dir', 'node.yaml');
    assert.throws(
      () => loadAgentConfig(path),
      (err) => err instanceof HaError && err.code === 'HA_ERR_BAD_REQUEST' && err.message.includes(path),
    );
  });
});

describe('configFromOptions', () => {
  const options: AgentConfigInput = {
    nodeId: 'node-1',
    discovery: { static: { nodes: ['node-1@127.0.0.1:7800', 'node-2@127.0.0.1:7801'] } },
    bindAddress: '127.0.0.1:7800',
    heartbeatInterval: '1s',
    electionTimeout: '5s',
    dataDir: 'data',
    tls: { ca: 'ca.crt', cert: 'n.crt', key: 'n.key' },
  };

  it('builds the same config as the equivalent YAML', () => {
    const fromObject = configFromOptions(options, { baseDir: '/srv' });
    const fromYaml = parseAgentConfig(JSON.stringify(options), '/srv/node.yaml');
    assert.deepEqual(fromObject, fromYaml);
    assert.equal(fromObject.electionTicks, 500);
  });

  it('treats fields set to undefined as omitted', () => {
    const c = configFromOptions(
      { ...options, apiAddress: undefined, logLevel: undefined },
      { baseDir: '/srv' },
    );
    assert.equal(c.apiPort, 8080);
    assert.equal(c.logLevel, 'info');
  });

  it('refuses bad options with the same field-naming errors', () => {
    const bad = { ...options, electionTimeout: '2s' };
    const errors = problemsOf(() => configFromOptions(bad));
    assert.match(
      problemFor(errors, 'electionTimeout'),
      /^options: field "electionTimeout": expected at least 3/,
    );
  });
});

describe('parseDurationMs', () => {
  const table: [string | number, number][] = [
    ['50ms', 50],
    ['1s', 1000],
    ['2m', 120_000],
    ['0ms', 0],
    [250, 250],
    ['1440m', 86_400_000],
  ];
  for (const [input, ms] of table) {
    it(`reads ${JSON.stringify(input)} as ${ms} ms`, () => assert.equal(parseDurationMs(input, 'f'), ms));
  }

  for (const input of ['fast', '1.5s', '-1s', '10', '1h', '1 s', 'ms', 1.5, -3, '1441m']) {
    it(`refuses ${JSON.stringify(input)} naming the field`, () => {
      assert.throws(
        () => parseDurationMs(input, 'electionTimeout'),
        (err) =>
          err instanceof HaError &&
          err.code === 'HA_ERR_BAD_REQUEST' &&
          err.message.startsWith('field "electionTimeout": expected a duration like "50ms" or "1s"'),
      );
    });
  }
});

// The library API end to end: three ClusterManagers, one per node of a cluster, in one process.
// Each is what a service embeds to take part in leader election and share replicated config;
// here they talk to each other over real mutual-TLS connections on loopback.
//
//   npm run build && node dist/examples/library-example.js [basePort]
//
// Ports: basePort, basePort + 1, basePort + 2 on 127.0.0.1 (the argument, else the environment
// variable ANYA_HA_EXAMPLE_BASE_PORT, else 7900). Certificates and data go to a temporary directory,
// removed at the end.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClusterManager, HaError } from '../src/index.js';
import { initCa, issueNodeCert } from '../src/transport/certs.js';

const basePortDefault = 7900;
/** How long the example waits for the three nodes to agree on a leader. */
const leaderDeadlineMs = 15_000;
const pollIntervalMs = 20;

function basePortFromArgs(): number {
  const text = process.argv[2] ?? process.env.ANYA_HA_EXAMPLE_BASE_PORT ?? String(basePortDefault);
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port + 2 <= 65535)) {
    throw new Error(`base port: expected an integer from 1 to 65533, got "${text}"`);
  }
  return port;
}

/** The leader once every node names the same one: the elected node and the others agree. */
async function waitForLeader(managers: readonly ClusterManager[]): Promise<ClusterManager> {
  const until = Date.now() + leaderDeadlineMs;
  while (Date.now() < until) {
    const leader = managers.find((m) => m.isLeader());
    if (leader) {
      const views = await Promise.all(managers.map((m) => m.getStatus()));
      if (views.every((v) => v.currentLeader === leader.config.nodeId)) return leader;
    }
    await new Promise((r) => setTimeout(r, pollIntervalMs));
  }
  throw new Error(`no leader within ${leaderDeadlineMs} ms`);
}

async function main(): Promise<void> {
  const basePort = basePortFromArgs();
  const dir = mkdtempSync(join(tmpdir(), 'anya-ha-example-'));
  const managers: ClusterManager[] = [];
  try {
    // One CA for the cluster; each node gets a certificate naming its node id. Peers accept only
    // certificates from this CA, and check the node id against the membership.
    const certDir = join(dir, 'certs');
    const ca = await initCa(certDir);
    const ids = ['node-1', 'node-2', 'node-3'];
    const nodes = ids.map((id, i) => `${id}@127.0.0.1:${basePort + i}`);
    for (const [i, id] of ids.entries()) {
      const cert = await issueNodeCert(certDir, id, { hosts: ['127.0.0.1', 'localhost'] });
      const cm = new ClusterManager({
        nodeId: id,
        discovery: { static: { nodes } },
        bindAddress: `127.0.0.1:${basePort + i}`,
        heartbeatInterval: '50ms',
        electionTimeout: '300ms',
        dataDir: join(dir, id),
        tls: { ca: ca.caCertPath, cert: cert.certPath, key: cert.keyPath },
        // JSON logs go to stderr; keep them to problems so that the example's own output reads.
        logLevel: 'error',
      });
      cm.on('leader-changed', (leaderId: string, term: number) =>
        console.log(`[${id}] leader-changed: ${leaderId} leads in term ${term}`),
      );
      managers.push(cm);
    }

    await Promise.all(managers.map((m) => m.initialize()));
    await Promise.all(managers.map((m) => m.joinCluster()));

    const leader = await waitForLeader(managers);
    const leaderStatus = await leader.getStatus();
    console.log(`leader: ${leader.config.nodeId} (term ${leaderStatus.term})`);

    // A write on a follower goes through Raft to the leader; it resolves once it has been
    // committed and applied on this node. ifVersion 0: only if the key does not exist yet.
    const follower = managers.find((m) => m !== leader)!;
    const followerId = follower.config.nodeId;
    const put = await follower.kv.put('greeting', `hello from ${followerId}`, { ifVersion: 0 });
    console.log(`put greeting on follower ${followerId}: version ${put.version}, revision ${put.revision}`);

    // Reads are linearizable by default, on any node: they see every write acknowledged before.
    const read = await follower.kv.get('greeting');
    console.log(`read back on ${followerId}: ${read?.value} (version ${read?.version})`);

    // The same compare-and-set again fails: the key exists now.
    try {
      await leader.kv.put('greeting', 'overwrite', { ifVersion: 0 });
      throw new Error('a compare-and-set on an existing key succeeded');
    } catch (err) {
      if (!(err instanceof HaError) || err.code !== 'HA_ERR_VERSION_MISMATCH') throw err;
      console.log(`compare-and-set refused: ${err.message} (${err.code})`);
    }

    // The fencing token: (term, index) of the entry that established this leadership. Pass it
    // with every action the leader takes on shared resources; they refuse lower tokens.
    const status = await leader.getStatus();
    console.log(
      `status of ${status.nodeId}: role ${status.role}, term ${status.term}, ` +
        `commit ${status.commitIndex}, applied ${status.appliedIndex}, members ` +
        status.nodes.map((n) => `${n.nodeId}=${n.role}`).join(' '),
    );
    const token = leader.fencingToken();
    console.log(`fencing token of ${leader.config.nodeId}: term ${token?.term}, index ${token?.index}`);

    // The leader hands leadership over before it stops, so the others carry on at once.
    await leader.shutdown();
    const rest = managers.filter((m) => m !== leader);
    const next = await waitForLeader(rest);
    console.log(`after ${leader.config.nodeId} stopped: leader ${next.config.nodeId}`);
  } finally {
    await Promise.all(managers.map((m) => m.shutdown()));
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('done');
}

main().catch((err: unknown) => {
  console.error(`library example failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});

// One simulation run: a cluster, clients recording a history, a nemesis injecting faults, the
// invariant checker after every event, then a liveness phase and a linearizability check.
// Everything random comes from one seed, so a run can be replayed exactly.
import { mulberry32, leaseTicksFor } from '../src/raft/index.js';
import { nodeId, type Mutations, type NodeId, type Prng, type RaftOptions } from '../src/raft/types.js';
import { encodeKvCommand } from '../src/state/kv-commands.js';
import type { KvResult } from '../src/state/kv-types.js';
import type { HaError } from '../src/errors.js';
import { Scheduler } from './scheduler.js';
import { SimNetwork } from './sim-network.js';
import { SimNode } from './sim-cluster.js';
import { InvariantChecker, type Violation } from './invariants.js';
import { checkLinearizable, describeHistory } from './linearizability.js';
import type { HistoryOp, KvOp, KvOutput } from './history.js';

export interface SeedOptions {
  readonly seed: number;
  readonly verbose?: boolean;
  readonly mutations?: Mutations;
  /** Core option overrides for every node (a mutation may need one). */
  readonly raft?: Partial<Omit<RaftOptions, 'id' | 'prng'>>;
  /** Length of the fault phase in simulated milliseconds. */
  readonly faultPhaseMs?: number;
  /**
   * Whether the steered Figure 8 scenario may run (default true). The mutation suite turns it
   * off: every mutation must be caught by the random workload alone.
   */
  readonly steered?: boolean;
}

export interface SeedResult {
  readonly seed: number;
  readonly violation: Violation | null;
  readonly ops: number;
  readonly faults: number;
  readonly events: number;
  readonly voters: number;
  readonly trace: readonly string[];
  readonly snapshotChunks: number;
  readonly snapshotRewinds: number;
}

const tickMs = 10;
const electionTicks = 10;
const heartbeatTicks = 2;
/** Clock drift bound: every node's clock runs within ±2% of real time. */
export const clockDriftMax = 0.02;
/** The lease margin covers the drift bound with room to spare (see src/raft/lease.ts). */
const leaseDriftMargin = 0.1;
const clientTimeoutMs = 300;
const clientsCount = 4;
const keys = ['a', 'b', 'c'];
/** After healing, a leader must be elected and a write committed within this simulated time. */
export const livenessBoundMs = 5000;
const drainMs = 1000;
/** The calm phase after liveness, and when in it the planned leadership transfer starts. */
const calmMs = 1500;
const calmTransferAtMs = 300;
/**
 * The autopilot's controller polls every 0.5-1.5x this, and counts a voter its leader has not
 * heard from for this many ticks as dead (Consul's LastContactThreshold is a fifth of its
 * election timeout; this is half of ours, so that a lossy link alone rarely looks dead).
 */
const autopilotPollMs = 200;
const autopilotDeadTicks = electionTicks / 2;

export function runSeed(opts: SeedOptions): SeedResult {
  const prng = mulberry32(opts.seed);
  const rnd = (n: number): number => Math.floor(prng.next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
  const scheduler = new Scheduler();
  const traceLines: string[] = [];
  const trace = (line: string): void => {
    if (opts.verbose) traceLines.push(`${(scheduler.nowUs / 1000).toFixed(3).padStart(10)} ms  ${line}`);
  };
  const network = new SimNetwork(scheduler, mulberry32(opts.seed ^ 0x5eed));

  // ---- cluster ------------------------------------------------------------------------------
  const voterCount = pick([3, 3, 5, 5, 7]);
  const learnerCount = rnd(3);
  const ids: NodeId[] = [];
  for (let i = 1; i <= voterCount + learnerCount; i++) ids.push(nodeId(`n${i}`));
  const bootstrap = { voters: ids.slice(0, voterCount), learners: ids.slice(voterCount) };
  const snapshotEntries = 20 + rnd(60);
  // Flow control varies per seed: one-entry appends and a single message in flight expose
  // orderings that big batches hide (an old-term entry acknowledged before the new term's).
  const entriesPerAppendMax = pick([1, 2, 8, 64]);
  const inflightMax = pick([1, 4, 32]);
  // Check-quorum also bounds how long an isolated leader acts; some seeds run without it so
  // that the lease is checked on its own.
  const checkQuorum = prng.next() < 0.75;
  // A storm: faults every 20-80 ms instead of 50-350 ms, mostly crashes of fresh leaders — the
  // histories (old-term entries replicated by a new leader, then overwritten) that the commit
  // rule of §3.6.2 exists for.
  const storm = prng.next() < 0.3;
  const figure8Seed = !storm && prng.next() < 0.3 && opts.steered !== false;
  // Fast failover (a follower campaigns when its leader's connection drops) is a trade-off the
  // operator picks, so both settings are run; a small read queue exposes reads that leak.
  const fastFailover = prng.next() < 0.5;
  const pendingReadsMax = prng.next() < 0.3 ? pick([4, 8]) : 1024;
  // Durable writes take time: about nothing (a battery-backed cache), a typical SSD fsync, or a
  // typical one with occasional slow writes (a busy device).
  const writeProfile = pick(['instant', 'typical', 'typical', 'slow'] as const);
  const writeLatencyUs = (p: Prng): number => {
    if (writeProfile === 'instant') return Math.floor(p.next() * 20);
    if (writeProfile === 'slow' && p.next() < 0.05) return 5000 + Math.floor(p.next() * 25_000);
    return 100 + Math.floor(p.next() * 1900);
  };
  // A busy event loop runs every timer a little late.
  const timerLatenessMaxUs = pick([0, 500, 1000, 2000]);
  // Automatic voter management (DESIGN §2): a controller that reacts to every new leader by
  // asking it for a membership change at once, as an autopilot promoting a standby would, and
  // that polls every leader's view of its peers' health (autopilotReconcile).
  const autopilot = prng.next() < 0.3;
  // Client traffic: the usual mix (60% writes), or read-mostly (98% reads, as a configuration
  // or discovery store sees, the traffic lease reads are offered for): there a leader often
  // goes an election timeout or more without appending anything.
  const readRatio = prng.next() < 0.3 ? 0.98 : 0.4;
  // Snapshots travel in chunks; small chunks make a transfer many messages long, so that loss,
  // duplication, reordering, resets and crashes land in the middle of one.
  const snapshotChunkBytes = pick([256, 1024, 4096, 1 << 20]);
  trace(
    `cluster: voters ${bootstrap.voters.join(',')} learners ${bootstrap.learners.join(',') || '-'}; ` +
      `appends of ${entriesPerAppendMax}, ${inflightMax} in flight, check-quorum ${checkQuorum ? 'on' : 'off'}, ` +
      `fast failover ${fastFailover ? 'on' : 'off'}, pending reads ${pendingReadsMax}, ` +
      `writes ${writeProfile}, timers up to ${timerLatenessMaxUs / 1000} ms late, ` +
      `snapshot chunks of ${snapshotChunkBytes} bytes` +
      `${autopilot ? ', autopilot' : ''}${readRatio > 0.5 ? ', read-mostly clients' : ''}` +
      `${storm ? ', storm' : ''}${figure8Seed ? ', figure-8 scenarios' : ''}`,
  );
  const checker = new InvariantChecker(() => scheduler.nowMs, {
    tickMs,
    electionTicks,
    checkQuorum: opts.raft?.checkQuorum ?? checkQuorum,
    timerLatenessMaxMs: timerLatenessMaxUs / 1000,
  });
  const nodes = new Map<NodeId, SimNode>();
  for (const id of ids) {
    const rate = 1 + (prng.next() * 2 - 1) * clockDriftMax;
    const node = new SimNode(
      id,
      rate,
      scheduler,
      network,
      checker,
      prng,
      bootstrap,
      {
        tickMs,
        raft: {
          electionTicks,
          heartbeatTicks,
          leaseTicks: leaseTicksFor(electionTicks, leaseDriftMargin),
          entriesPerAppendMax,
          inflightMax,
          checkQuorum,
          fastFailover,
          pendingReadsMax,
          snapshotChunkBytes,
          ...opts.raft,
        },
        snapshotEntries,
        mutations: opts.mutations,
        timerLatenessMaxUs,
        writeLatencyUs,
      },
      trace,
    );
    nodes.set(id, node);
    node.start();
  }
  const all = [...nodes.values()];
  const upNodes = (): SimNode[] => all.filter((n) => n.up);
  const leader = (): SimNode | null => {
    let best: SimNode | null = null;
    for (const n of upNodes()) {
      const st = n.runtime!.status();
      if (st.role === 'leader' && (!best || st.term > best.runtime!.status().term)) best = n;
    }
    return best;
  };

  /** The leader of the newest term among running nodes, if that term has one. */
  const currentLeader = (): SimNode | null => {
    const l = leader();
    if (!l) return null;
    const termMax = Math.max(...upNodes().map((n) => n.runtime!.status().term));
    return l.runtime!.status().term === termMax ? l : null;
  };

  // ---- clients --------------------------------------------------------------------------------
  const history: HistoryOp[] = [];
  let opId = 0;
  let clientsRunning = true;
  const lastVersion = new Map<string, number>();

  /**
   * The calm phase (after liveness): a healthy cluster with one planned leadership transfer.
   * Requests started in it must be answered before their deadline, reads must succeed once
   * accepted, and writes may fail only with a definite refusal.
   */
  let calmFromUs = Number.POSITIVE_INFINITY;
  const calmFailures: string[] = [];
  const runClient = (clientId: number): void => {
    if (!clientsRunning) return;
    const node = pick(all);
    const key = pick(keys);
    const r = prng.next();
    let op: KvOp;
    // Writes split 25:20:8:7 between put, compare-and-set put, delete and conditional delete.
    const w = (r - readRatio) / (1 - readRatio);
    if (r < readRatio) op = { kind: 'get' };
    else if (w < 0.25 / 0.6) op = { kind: 'put', value: `c${clientId}-${opId}` };
    else if (w < 0.45 / 0.6)
      op = { kind: 'put', value: `c${clientId}-${opId}`, ifVersion: lastVersion.get(key) ?? 0 };
    else if (w < 0.53 / 0.6) op = { kind: 'delete' };
    else op = { kind: 'delete', ifVersion: lastVersion.get(key) ?? 0 };
    const id = opId++;
    const invokeMs = scheduler.nowMs;
    let done = false;
    let sync = false;
    const next = (): void => {
      scheduler.after(1000 + rnd(20_000), () => runClient(clientId));
    };
    const inCalm = scheduler.nowUs >= calmFromUs;
    const calmFailure = (why: string): void => {
      if (inCalm && !done) calmFailures.push(`client ${clientId} ${op.kind} ${key} via ${node.id}: ${why}`);
    };
    const finish = (output: KvOutput | null, record: boolean): void => {
      if (done) return;
      done = true;
      if (record) {
        history.push({ id, clientId, key, op, invokeMs, returnMs: output ? scheduler.nowMs : null, output });
        if (output && 'version' in output) lastVersion.set(key, output.version);
        if (output && 'currentVersion' in output) lastVersion.set(key, output.currentVersion);
      }
      trace(
        `client ${clientId} ${op.kind} ${key} via ${node.id}: ${output ? JSON.stringify(output) : record ? 'indeterminate' : 'failed'}`,
      );
      next();
    };
    // The client gives up on its own deadline too: a crashed node never answers.
    scheduler.after((clientTimeoutMs + 50) * 1000, () => {
      calmFailure(`no answer within ${clientTimeoutMs + 50} ms`);
      finish(null, op.kind !== 'get');
    });
    if (!node.up) {
      finish(null, false); // connection refused: definite
      return;
    }
    const invoke = (): void => {
      if (done) return; // the client gave up while the node was frozen
      const rt = node.runtime!;
      const kv = node.kv!;
      sync = true;
      if (op.kind === 'get') {
        rt.readCb(prng.next() < 0.5 ? 'linearizable' : 'lease', clientTimeoutMs, (err) => {
          // Refused at once for want of a leader at this instant is fine; accepted, it must
          // succeed; and four clients can never make a healthy node busy.
          if (err && !sync) calmFailure(`read accepted, then failed with ${err.code}`);
          else if (err && err.code === 'HA_ERR_BUSY') calmFailure(`read refused: ${err.message}`);
          if (err) return finish(null, false);
          const e = kv.get(key);
          finish(
            e
              ? { kind: 'get', found: true, value: e.value, version: e.version }
              : { kind: 'get', found: false },
            true,
          );
        });
      } else {
        const cmd =
          op.kind === 'put'
            ? encodeKvCommand({ op: 'put', key, value: op.value, ifVersion: op.ifVersion })
            : encodeKvCommand({ op: 'delete', key, ifVersion: op.ifVersion });
        rt.proposeCb(cmd, clientTimeoutMs, (err: HaError | null, res?: KvResult) => {
          // A refusal before anything was proposed is definite; any later error is indeterminate.
          if (err && !sync && (err.code === 'HA_ERR_TIMEOUT' || err.code === 'HA_ERR_NO_QUORUM')) {
            calmFailure(`write accepted, then failed with ${err.code}`);
          }
          if (err) return finish(null, !sync);
          finish(toOutput(op, res!), true);
        });
      }
      sync = false;
    };
    // The request is an I/O event of the node: a frozen node takes it when it runs again.
    node.io(invoke);
  };

  // ---- nemesis --------------------------------------------------------------------------------
  let faults = 0;
  /** Set when the liveness phase heals everything: nemesis events still scheduled do nothing. */
  let healed = false;
  const partition = (groupA: NodeId[]): void => {
    const a = new Set(groupA);
    for (const x of ids) for (const y of ids) if (a.has(x) !== a.has(y)) network.block(x, y);
  };
  /** Set while a scripted scenario runs: the random nemesis stays out of its way. */
  let scenarioActive = false;

  /** Polls `check` every 0.2 ms of simulated time until it returns true or `forMs` passes. */
  const watch = (forMs: number, check: () => boolean, onTimeout: () => void): void => {
    const untilUs = scheduler.nowUs + forMs * 1000;
    const poll = (): void => {
      if (healed) return;
      if (check()) return;
      if (scheduler.nowUs >= untilUs) onTimeout();
      else scheduler.after(200, poll);
    };
    poll();
  };

  /**
   * The history of the Raft paper's Figure 8, steered rather than waited for: the leader and a
   * minority are cut off while clients write to it (entries of its term reach only the
   * minority); the majority elects a leader, which is isolated the moment it wins, so its first
   * entry stays on its own log; then the two sides heal and a leader from the old minority
   * replicates its old-term entries. If that leader ever commits an entry of an earlier term by
   * counting replicas, it is cut off at once and the isolated node, whose log ends in a later
   * term, is let back to overwrite the "committed" entry. A correct core never commits there,
   * so the scenario fizzles out; a core without the §3.6.2 rule is caught.
   */
  const figure8 = (): void => {
    const l = leader();
    if (!l) return;
    const voters = l.runtime!.status().config.voters;
    if (voters.length < 5) return;
    const others = voters.filter((v) => v !== l.id).sort(() => prng.next() - 0.5);
    const minority = [l.id, ...others.slice(0, Math.floor((voters.length - 1) / 2) - 1)];
    const startTerm = l.runtime!.status().term;
    scenarioActive = true;
    const finish = (): void => {
      scenarioActive = false;
    };
    partition(minority);
    trace(`nemesis: figure-8 scenario, minority {${minority.join(',')}} with leader ${l.id}`);
    watch(
      1500,
      () => {
        const x = all.find((n) => n.up && !minority.includes(n.id) && n.runtime!.status().role === 'leader');
        if (!x || x.runtime!.status().term <= startTerm) return false;
        network.healAll();
        partition([x.id]);
        trace(`nemesis: figure-8: isolate new leader ${x.id} at once, heal the rest`);
        const electedTerm = new Map<NodeId, number>();
        watch(
          1500,
          () => {
            const y = all.find((n) => n.up && n !== x && n.runtime!.status().role === 'leader');
            if (!y) return false;
            const st = y.runtime!.status();
            const termAtCommit = checker.mirror(y.id).termAt(st.commit);
            if (!electedTerm.has(y.id)) electedTerm.set(y.id, st.term);
            if (termAtCommit === null || termAtCommit >= st.term) return false;
            // Only an entry that x's log contradicts can be overwritten by x.
            if (checker.mirror(x.id).termAt(st.commit) === termAtCommit) return false;
            // Cut off every node that could outvote x: y and the old minority, which hold the
            // old-term entries; x's log ends in a later term than the rest, so x can win.
            network.healAll();
            partition([...new Set([...minority, y.id])]);
            trace(
              `nemesis: figure-8: ${y.id} committed an entry of term ${termAtCommit}; ` +
                `cut it off with {${minority.join(',')}}, let ${x.id} back`,
            );
            finish();
            return true;
          },
          finish,
        );
        return true;
      },
      finish,
    );
  };

  /**
   * The autopilot's health pass, run by every node that believes it leads (as Consul's autopilot
   * runs on the leader), each time its controller polls: a voter this leader has not heard from
   * for `autopilotDeadTicks` is demoted (dead-server cleanup, never below 3 voters); otherwise a
   * learner it hears from is promoted while there are fewer voters than the cluster started
   * with. An isolated leader sees every follower as dead, so its request is appended where
   * nobody else can see it.
   */
  const autopilotReconcile = (l: SimNode): void => {
    const st = l.runtime!.status();
    const cfg = st.config;
    const heard = new Map(st.peers.map((p) => [p.id, p.lastContactTicks < autopilotDeadTicks]));
    const dead = cfg.voters.filter((v) => v !== l.id && heard.get(v) === false);
    const healthyLearners = cfg.learners.filter((v) => heard.get(v) === true);
    const change =
      dead.length > 0 && cfg.voters.length > 3
        ? { type: 'demote' as const, node: pick(dead) }
        : healthyLearners.length > 0 && cfg.voters.length < voterCount
          ? { type: 'addVoter' as const, node: pick(healthyLearners) }
          : null;
    if (!change) return;
    requestMembership(l, change, 'autopilot health');
  };

  const requestMembership = (
    l: SimNode,
    change: { type: 'addVoter' | 'demote'; node: NodeId },
    who: string,
  ): void => {
    trace(`${who}: membership ${change.type} ${change.node} at ${l.id}`);
    l.io(() => {
      if (!l.up) return;
      l.runtime!.changeMembershipCb(change, 500, (err) =>
        trace(`membership ${change.type} ${change.node}: ${err ? err.code : 'ok'}`),
      );
    });
  };

  /** Asks leader `l` to promote a learner or demote a voter (never below 3 voters). */
  const changeMembership = (l: SimNode, who: string): void => {
    const cfg = l.runtime!.status().config;
    const promote =
      cfg.learners.length > 0 && cfg.voters.length < 7 && (cfg.voters.length <= 3 || prng.next() < 0.5);
    const change = promote
      ? { type: 'addVoter' as const, node: pick(cfg.learners) }
      : cfg.voters.length > 3
        ? { type: 'demote' as const, node: pick(cfg.voters) }
        : null;
    if (!change) return;
    requestMembership(l, change, who);
  };

  const nemesis = (): void => {
    if (scenarioActive) return;
    faults++;
    if (figure8Seed && prng.next() < 0.25) {
      figure8();
      return;
    }
    // Leader network trouble (15) is drawn three times as often as the others: it is the fault
    // of a healthy-looking cluster that the lease and fast failover must both survive.
    const r = storm && prng.next() < 0.6 ? 4 : Math.min(15, rnd(18));
    const l = leader();
    switch (r) {
      case 0: {
        const shuffled = [...ids].sort(() => prng.next() - 0.5);
        const cut = 1 + rnd(ids.length - 1);
        partition(shuffled.slice(0, cut));
        trace(`nemesis: partition {${shuffled.slice(0, cut).join(',')}} | rest`);
        break;
      }
      case 1:
        if (l) {
          partition([l.id]);
          trace(`nemesis: isolate leader ${l.id}`);
        }
        break;
      case 2: {
        const victim = l ?? pick(all);
        const inbound = prng.next() < 0.5;
        for (const x of ids) {
          if (x === victim.id) continue;
          if (inbound) network.block(x, victim.id);
          else network.block(victim.id, x);
        }
        trace(`nemesis: cut ${inbound ? 'inbound to' : 'outbound from'} ${victim.id}`);
        break;
      }
      case 3: {
        const a = pick(ids);
        const b = pick(ids.filter((x) => x !== a));
        const periodUs = (5 + rnd(40)) * 1000;
        const flips = 5 + rnd(20);
        trace(`nemesis: flapping link ${a}<->${b}`);
        // An even number of flips: the link ends up connected.
        for (let i = 0; i < flips + (flips % 2); i++) {
          scheduler.after(i * periodUs, () => {
            if (healed) return;
            if (i % 2 === 0) {
              network.block(a, b);
              network.block(b, a);
            } else {
              network.unblock(a, b);
              network.unblock(b, a);
            }
          });
        }
        break;
      }
      case 4: {
        const victim = prng.next() < (storm ? 0.8 : 0.5) && l ? l : pick(all);
        if (prng.next() < 0.3) {
          victim.storage.failNextPersist();
          trace(`nemesis: ${victim.id} will lose power during its next fsync`);
        } else victim.crash();
        scheduler.after((storm ? 20 + rnd(200) : 50 + rnd(700)) * 1000, () => {
          if (!victim.up) {
            trace(`nemesis: restart ${victim.id}`);
            victim.start();
          }
        });
        break;
      }
      case 5: {
        const victim = l ?? pick(all);
        victim.pause();
        scheduler.after((50 + rnd(3 * electionTicks * tickMs)) * 1000, () => victim.resume());
        break;
      }
      case 12: {
        // A stalled event loop (GC, a big synchronous task): shorter than a pause, any node.
        const victim = l && prng.next() < 0.5 ? l : pick(all);
        victim.stall(20 + rnd(281));
        break;
      }
      case 13: {
        // A VM suspended and resumed: the monotonic clock jumps, every due timer fires at once.
        // On a voter other than the leader, a jump without the real time passing would be drift
        // far beyond the bound the lease is built on (it would vote early), so there the step
        // is what a suspension looks like from inside: frozen while the time passes.
        const victim = l && prng.next() < 0.5 ? l : pick(all);
        const stepMs = 20 + rnd(281);
        if (victim === l) victim.stepClock(stepMs);
        else victim.stall(stepMs);
        break;
      }
      case 14: {
        // One end alone sees the connection reset: a follower its leader's, or the leader a
        // follower's; the other end sees nothing and nobody crashed.
        const a = l ?? pick(all);
        const b = pick(all.filter((n) => n !== a));
        const [observer, peer] = prng.next() < 0.5 ? [b, a] : [a, b];
        const reconnectMs = 5 + rnd(150);
        trace(
          `nemesis: ${observer.id} alone sees its connection to ${peer.id} reset (${reconnectMs} ms to reconnect)`,
        );
        network.resetSeenBy(observer.id, peer.id, 0, reconnectMs * 1000);
        break;
      }
      case 15: {
        // Trouble around the leader (a rack's switch, a host under memory pressure): each
        // follower, independently and at its own moment, sees its connection to the leader
        // reset (then waits out a reconnect), or silently stops getting the leader's packets
        // for a while, or crashes and is restarted by its supervisor at once, or notices nothing.
        if (!l) break;
        for (const f of all) {
          if (f === l) continue;
          const p = prng.next();
          const atUs = rnd(250) * 1000;
          if (p < 0.15) {
            const downMs = 5 + rnd(40);
            trace(`nemesis: ${f.id} will crash in ${atUs / 1000} ms and restart ${downMs} ms later`);
            scheduler.after(atUs, () => {
              if (healed || !f.up) return;
              f.crash();
              scheduler.after(downMs * 1000, () => {
                if (!f.up) f.start();
              });
            });
          } else if (p < 0.5) {
            const reconnectMs = 5 + rnd(150);
            trace(`nemesis: ${f.id} will see its connection to leader ${l.id} reset in ${atUs / 1000} ms`);
            network.resetSeenBy(f.id, l.id, atUs, reconnectMs * 1000);
          } else if (p < 0.85) {
            const forMs = 50 + rnd(250);
            trace(`nemesis: ${f.id} loses leader ${l.id}'s packets in ${atUs / 1000} ms for ${forMs} ms`);
            scheduler.after(atUs, () => {
              if (healed) return;
              network.block(l.id, f.id);
              scheduler.after(forMs * 1000, () => network.unblock(l.id, f.id));
            });
          }
        }
        break;
      }
      case 6:
        network.healAll();
        trace('nemesis: heal all links');
        break;
      case 7:
        if (l) {
          const voters = l.runtime!.status().config.voters.filter((v) => v !== l.id);
          if (voters.length > 0) {
            const to = pick(voters);
            trace(`nemesis: transfer leadership ${l.id} -> ${to}`);
            l.io(() => l.runtime!.transferLeadershipCb(to, 500, () => {}));
          }
        }
        break;
      case 8:
        if (l) changeMembership(l, 'nemesis');
        break;
      case 9:
        network.faults.lossRatio = prng.next() * 0.3;
        network.faults.duplicateRatio = prng.next() * 0.05;
        trace(
          `nemesis: loss ${network.faults.lossRatio.toFixed(2)} duplication ${network.faults.duplicateRatio.toFixed(2)}`,
        );
        break;
      case 10:
        network.faults.delayMaxUs = 2000 + rnd(30_000);
        trace(`nemesis: delay up to ${network.faults.delayMaxUs / 1000} ms`);
        break;
      default:
        network.faults.lossRatio = 0;
        network.faults.duplicateRatio = 0;
        network.faults.delayMaxUs = 2000;
        trace('nemesis: network quiet');
    }
  };

  /** The newest leadership the autopilot reacted to. */
  let autopilotTerm = 0;
  const afterEach = (): boolean => {
    const leaseHolders: { id: NodeId; term: number }[] = [];
    const leaders: { id: NodeId; term: number }[] = [];
    for (const n of all) {
      if (!n.up) continue;
      const st = n.runtime!.status();
      if (st.role === 'leader') {
        leaders.push({ id: n.id, term: st.term });
        // A frozen leader serves nothing until it has caught up its ticks on waking.
        const expiresAtMs = n.runtime!.leaseExpiresAtMs();
        if (n.frozen === null && expiresAtMs !== null && n.nowMs() < expiresAtMs) {
          leaseHolders.push({ id: n.id, term: st.term });
        }
      }
      if (autopilot && !healed && st.role === 'leader' && st.term > autopilotTerm) {
        autopilotTerm = st.term;
        const l = n;
        scheduler.after(rnd(3000), () => {
          if (!healed && l.up && l.runtime!.status().term === st.term) changeMembership(l, 'autopilot');
        });
      }
      checker.observe({
        id: n.id,
        role: st.role,
        term: st.term,
        commit: st.commit,
        fencingToken: st.fencingToken,
        voters: st.config.voters,
        nowMs: n.nowMs(),
        frozen: n.frozen !== null,
        lastUnfrozenAtMs: n.lastUnfrozenAtMs,
      });
    }
    checker.checkLeaseExclusivity(leaseHolders, leaders);
    return checker.violation !== null;
  };

  // ---- phases ---------------------------------------------------------------------------------
  const faultPhaseMs = opts.faultPhaseMs ?? 3000;
  for (let c = 0; c < clientsCount; c++) scheduler.after(rnd(5000), () => runClient(c));
  if (autopilot) {
    const poll = (): void => {
      if (healed) return;
      for (const n of upNodes()) {
        if (n.frozen === null && n.runtime!.status().role === 'leader') autopilotReconcile(n);
      }
      scheduler.after((autopilotPollMs / 2 + rnd(autopilotPollMs)) * 1000, poll);
    };
    scheduler.after(rnd(autopilotPollMs) * 1000, poll);
  }
  for (let t = 300 + rnd(200); t < faultPhaseMs; t += storm ? 20 + rnd(60) : 50 + rnd(300)) {
    scheduler.at(t * 1000, nemesis);
  }
  scheduler.runUntil(faultPhaseMs * 1000, afterEach);

  let violation = checker.violation;
  if (!violation) {
    // Liveness: heal everything; a leader must be elected and a write committed in the bound.
    trace('liveness: heal all, restart and resume every node');
    healed = true;
    network.healAll();
    network.faults.lossRatio = 0;
    network.faults.duplicateRatio = 0;
    network.faults.delayMaxUs = 2000;
    for (const n of all) {
      n.storage.failNextPersist(false);
      if (!n.up) n.start();
      else n.thaw();
    }
    const healedAtUs = scheduler.nowUs;
    let committed = false;
    const tryWrite = (): void => {
      if (committed) return;
      const l = leader();
      if (l) {
        l.runtime!.proposeCb(
          encodeKvCommand({ op: 'put', key: 'liveness', value: String(opts.seed) }),
          500,
          (err) => {
            if (!err) committed = true;
          },
        );
      }
      scheduler.after(20_000, tryWrite);
    };
    tryWrite();
    // Reads too: a linearizable read through every voter and learner must succeed.
    const readsPending = new Map<SimNode, string>(all.map((n) => [n, 'not tried']));
    const tryRead = (n: SimNode): void => {
      if (!readsPending.has(n)) return;
      if (n.up) {
        n.io(() =>
          n.runtime!.readCb('linearizable', 500, (err) => {
            if (!err) {
              readsPending.delete(n);
              trace(`liveness: read through ${n.id} succeeded`);
            } else {
              readsPending.set(n, err.code);
              scheduler.after(20_000, () => tryRead(n));
            }
          }),
        );
      } else scheduler.after(20_000, () => tryRead(n));
    };
    for (const n of all) tryRead(n);
    scheduler.runUntil(
      healedAtUs + livenessBoundMs * 1000,
      () => afterEach() || (committed && readsPending.size === 0),
    );
    violation = checker.violation;
    if (!violation && !committed) {
      violation = {
        invariant: 'liveness',
        message: `no write committed within ${livenessBoundMs} ms after healing (leader: ${leader()?.id ?? 'none'})`,
        atMs: scheduler.nowMs,
      };
    } else if (!violation && readsPending.size > 0) {
      const failed = [...readsPending].map(([n, why]) => `${n.id} (${why})`).join(', ');
      violation = {
        invariant: 'liveness',
        message: `no linearizable read succeeded within ${livenessBoundMs} ms after healing through ${failed}`,
        atMs: scheduler.nowMs,
      };
    } else if (!violation) {
      trace(
        `liveness: write committed and reads served ${((scheduler.nowUs - healedAtUs) / 1000).toFixed(1)} ms after healing`,
      );
    }
  }
  if (!violation && !currentLeader()) {
    // The calm phase starts from a working leader: the liveness write may have committed a
    // membership change that removed the leader, whose successor is elected in its own time.
    scheduler.runUntil(
      scheduler.nowUs + livenessBoundMs * 1000,
      () => afterEach() || currentLeader() !== null,
    );
    violation = checker.violation;
    if (!violation && !currentLeader()) {
      violation = {
        invariant: 'liveness',
        message: `no leader within ${livenessBoundMs} ms after the liveness write`,
        atMs: scheduler.nowMs,
      };
    }
  }
  if (!violation) {
    // Calm: no faults, clients on, one planned transfer. The term may rise once (the transfer);
    // any other election is a spurious leader change.
    const startLeader = leader();
    const startTerm = Math.max(...upNodes().map((n) => n.runtime!.status().term));
    calmFromUs = scheduler.nowUs;
    trace(`calm: ${calmMs} ms without faults from term ${startTerm}, leader ${startLeader?.id ?? '-'}`);
    let transferred = false;
    scheduler.after(calmTransferAtMs * 1000, () => {
      const l = leader();
      if (!l) return;
      const voters = l.runtime!.status().config.voters.filter((v) => v !== l.id);
      if (voters.length === 0) return;
      const to = pick(voters);
      transferred = true;
      trace(`calm: planned transfer ${l.id} -> ${to}`);
      l.io(() => l.runtime!.transferLeadershipCb(to, 500, () => {}));
    });
    const calmUntilUs = scheduler.nowUs + calmMs * 1000;
    let termMax = startTerm;
    scheduler.runUntil(calmUntilUs, () => {
      if (afterEach()) return true;
      for (const n of upNodes()) termMax = Math.max(termMax, n.runtime!.status().term);
      return termMax > startTerm + (transferred ? 1 : 0) || calmFailures.length > 0;
    });
    violation = checker.violation;
    if (!violation && termMax > startTerm + (transferred ? 1 : 0)) {
      violation = {
        invariant: 'stability',
        message: `term went from ${startTerm} to ${termMax} in a calm cluster (${transferred ? 'one' : 'no'} planned transfer)`,
        atMs: scheduler.nowMs,
      };
    } else if (!violation && calmFailures.length > 0) {
      violation = {
        invariant: 'responsiveness',
        message: `in a calm cluster: ${calmFailures.join('; ')}`,
        atMs: scheduler.nowMs,
      };
    }
  }
  if (!violation) {
    clientsRunning = false;
    scheduler.runUntil(scheduler.nowUs + drainMs * 1000, afterEach);
    violation = checker.violation;
  }
  if (!violation) {
    const lin = checkLinearizable(history);
    if (lin.ok === false) {
      violation = {
        invariant: 'linearizability',
        message: `key ${lin.key}: ${lin.message}\n${describeHistory(lin.ops)}`,
        atMs: scheduler.nowMs,
      };
    } else if (lin.ok === 'unknown') {
      // An inconclusive search proves nothing: it fails the seed like a violation would.
      violation = {
        invariant: 'linearizability (inconclusive)',
        message: `key ${lin.key}: search budget exceeded: ${lin.message}`,
        atMs: scheduler.nowMs,
      };
    }
  }
  return {
    seed: opts.seed,
    violation,
    ops: history.length,
    faults,
    events: scheduler.eventsRun,
    voters: voterCount,
    trace: traceLines,
    snapshotChunks: network.snapshotChunksDelivered,
    snapshotRewinds: network.snapshotRewinds,
  };
}

function toOutput(op: KvOp, res: KvResult): KvOutput {
  if (op.kind === 'put') {
    if (res.ok && 'version' in res) return { kind: 'put', ok: true, version: res.version };
    if (!res.ok && res.code === 'HA_ERR_VERSION_MISMATCH')
      return { kind: 'put', ok: false, currentVersion: res.currentVersion };
  } else if (op.kind === 'delete') {
    if (res.ok) return { kind: 'delete', ok: true };
    if (res.code === 'HA_ERR_NOT_FOUND') return { kind: 'delete', ok: false, reason: 'notFound' };
    if (res.code === 'HA_ERR_VERSION_MISMATCH')
      return { kind: 'delete', ok: false, reason: 'mismatch', currentVersion: res.currentVersion };
  }
  throw new Error(`unexpected result for ${op.kind}: ${JSON.stringify(res)}`);
}

export type { Prng };

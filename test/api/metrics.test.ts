// The metrics behind GET /metrics (src/cluster/metrics.ts): live gauges read the status at scrape
// time, hooks feed counters and histograms, and each node has a registry of its own.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMetrics, type MetricsStatusSource } from '../../src/cluster/metrics.js';

/** The value of the series `name{labels}` in a text exposition, whatever order the labels are in. */
function sample(text: string, series: string): number | undefined {
  const parse = (s: string) => {
    const m = /^([a-zA-Z0-9_:]+)(?:\{(.*)\})?$/.exec(s);
    if (m === null) return null;
    const labels = (m[2] ?? '').split(',').filter(Boolean).sort().join(',');
    return `${m[1]}{${labels}}`;
  };
  const wanted = parse(series);
  for (const line of text.split('\n')) {
    const space = line.lastIndexOf(' ');
    if (line.startsWith('#') || space < 0) continue;
    if (parse(line.slice(0, space)) === wanted) return Number(line.slice(space + 1));
  }
  return undefined;
}

describe('createMetrics', () => {
  it('role, term, commit and applied index follow the status at each scrape', async () => {
    const status: MetricsStatusSource = { role: 'follower', term: 2, commitIndex: 10, appliedIndex: 9 };
    const m = createMetrics({ nodeId: 'n1', status: () => status });
    let text = await m.text();
    assert.equal(sample(text, 'anya_ha_role{role="follower",node="n1"}'), 1);
    assert.equal(sample(text, 'anya_ha_role{role="leader",node="n1"}'), 0);
    assert.equal(sample(text, 'anya_ha_term{node="n1"}'), 2);

    Object.assign(status, { role: 'leader', term: 3, commitIndex: 12, appliedIndex: 12 });
    text = await m.text();
    assert.equal(sample(text, 'anya_ha_role{role="leader",node="n1"}'), 1);
    assert.equal(sample(text, 'anya_ha_role{role="follower",node="n1"}'), 0);
    assert.equal(sample(text, 'anya_ha_term{node="n1"}'), 3);
    assert.equal(sample(text, 'anya_ha_commit_index{node="n1"}'), 12);
    assert.equal(sample(text, 'anya_ha_applied_index{node="n1"}'), 12);
  });

  it('hooks count leader changes, elections, proposals, fsyncs and peer state', async () => {
    const m = createMetrics({
      nodeId: 'n1',
      status: () => ({ role: 'leader', term: 1, commitIndex: 0, appliedIndex: 0 }),
    });
    m.onLeaderChange();
    m.onElection();
    m.onElection();
    m.observeProposal(0.002, 'committed');
    m.observeProposal(5, 'timeout');
    m.observeFsync(0.0003);
    m.setPeerRtt('n2', 0.0015);
    m.setPeerReachable('n2', false);
    const text = await m.text();
    assert.equal(sample(text, 'anya_ha_leader_changes_total{node="n1"}'), 1);
    assert.equal(sample(text, 'anya_ha_elections_total{node="n1"}'), 2);
    assert.equal(sample(text, 'anya_ha_proposals_total{result="committed",node="n1"}'), 1);
    assert.equal(sample(text, 'anya_ha_proposals_total{result="timeout",node="n1"}'), 1);
    assert.equal(
      sample(text, 'anya_ha_proposal_duration_seconds_bucket{le="0.0025",result="committed",node="n1"}'),
      1,
    );
    assert.equal(
      sample(text, 'anya_ha_proposal_duration_seconds_bucket{le="0.0001",result="committed",node="n1"}'),
      0,
    );
    assert.equal(sample(text, 'anya_ha_fsync_duration_seconds_bucket{le="0.0005",node="n1"}'), 1);
    assert.equal(sample(text, 'anya_ha_fsync_duration_seconds_bucket{le="1",node="n1"}'), 1);
    assert.equal(sample(text, 'anya_ha_peer_rtt_seconds{peer="n2",node="n1"}'), 0.0015);
    assert.equal(sample(text, 'anya_ha_peer_reachable{peer="n2",node="n1"}'), 0);
  });

  it('removePeer drops the departed peer series', async () => {
    const m = createMetrics({
      nodeId: 'n1',
      status: () => ({ role: 'leader', term: 1, commitIndex: 0, appliedIndex: 0 }),
    });
    m.setPeerReachable('n9', true);
    m.setPeerRtt('n9', 0.001);
    m.removePeer('n9');
    assert.doesNotMatch(await m.text(), /peer="n9"/);
  });

  it('includes the process metrics, and two nodes in one process keep separate registries', async () => {
    const status = () => ({ role: 'leader', term: 1, commitIndex: 0, appliedIndex: 0 });
    const a = createMetrics({ nodeId: 'a', status });
    const b = createMetrics({ nodeId: 'b', status });
    a.onElection();
    const textA = await a.text();
    const textB = await b.text();
    assert.match(textA, /^anya_ha_process_cpu_user_seconds_total/m);
    assert.equal(sample(textA, 'anya_ha_elections_total{node="a"}'), 1);
    assert.equal(sample(textB, 'anya_ha_elections_total{node="b"}'), 0);
    assert.match(a.contentType, /^text\/plain; version=0\.0\.4/);
  });
});

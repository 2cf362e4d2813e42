// `anya-ha agent --config node.yaml`: one node as a process, with the HTTP API on its own
// listener (the data plane between nodes stays on the peer port). SIGTERM/SIGINT: a leader hands
// leadership over, then the node exits cleanly.
import { pino } from 'pino';
import { createApiServer } from '../api/http-server.js';
import { ClusterManager } from './cluster-manager.js';
import { loadAgentConfig } from './config.js';

export interface RunningAgent {
  readonly manager: ClusterManager;
  readonly apiPort: number;
  stop(): Promise<void>;
}

export async function startAgent(configPath: string): Promise<RunningAgent> {
  const config = loadAgentConfig(configPath);
  const logger = pino({ level: config.logLevel, base: { node: config.nodeId } });
  const manager = new ClusterManager({ config, logger });
  await manager.initialize();
  const api = createApiServer({
    backend: manager.apiBackend(),
    metrics: manager.metrics,
    logger: logger.child({ component: 'api' }),
    requestTimeoutMs: config.requestTimeoutMs,
  });
  const { port } = await api.listen(config.apiHost, config.apiPort);
  await manager.joinCluster();
  logger.info({ api: `http://${config.apiHost}:${port}` }, 'agent ready');
  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await manager.shutdown();
      await api.close();
    })();
    return stopping;
  };
  return { manager, apiPort: port, stop };
}

/** Runs the agent until SIGTERM or SIGINT. */
export async function runAgent(configPath: string): Promise<void> {
  const agent = await startAgent(configPath);
  const onSignal = (signal: string): void => {
    agent.manager.logger.info({ signal }, 'stopping');
    agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        agent.manager.logger.error({ err: (err as Error).message }, 'unclean stop');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
}

#!/usr/bin/env node
// The anya-ha command line: agent, up, cert, and the client commands that talk to a node's API.
import { Command, CommanderError } from 'commander';
import { HaError } from '../errors.js';
import { runAgent } from '../cluster/agent.js';
import { registerClientCommands } from './client-commands.js';
import { registerUpCommand } from './up.js';

function fail(err: unknown): never {
  if (err instanceof HaError) process.stderr.write(`error: ${err.message} (${err.code})\n`);
  else process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

export function buildProgram(): Command {
  const program = new Command('anya-ha')
    .description('anya-ha: high-availability cluster manager (Raft, fencing, replicated configuration)')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('agent')
    .description('run one node: Raft peer listener plus HTTP API')
    .requiredOption('--config <file>', 'node configuration (YAML)')
    .action(async (opts: { config: string }) => {
      await runAgent(opts.config).catch(fail);
    });

  const cert = program.command('cert').description('cluster certificates (ECDSA P-256)');
  cert
    .command('init')
    .description('create the cluster CA in a directory (kept if it exists)')
    .requiredOption('--dir <dir>', 'certificate directory')
    .action(async (opts: { dir: string }) => {
      // Loaded on demand: the certificate-authority code is large and the agent never needs it.
      const { initCa } = await import('../transport/certs.js');
      const ca = await initCa(opts.dir).catch(fail);
      process.stdout.write(`CA certificate: ${ca.caCertPath}\nCA key:         ${ca.caKeyPath}\n`);
    });
  cert
    .command('issue')
    .description('issue a node certificate signed by the cluster CA')
    .requiredOption('--node <id>', 'node id the certificate speaks for')
    .requiredOption('--dir <dir>', 'certificate directory holding the CA')
    .option('--host <host...>', 'DNS names or IP addresses to include (default 127.0.0.1, localhost)')
    .action(async (opts: { node: string; dir: string; host?: string[] }) => {
      const { issueNodeCert } = await import('../transport/certs.js');
      const c = await issueNodeCert(opts.dir, opts.node, opts.host ? { hosts: opts.host } : undefined).catch(
        fail,
      );
      process.stdout.write(`certificate: ${c.certPath}\nkey:         ${c.keyPath}\n`);
    });

  registerUpCommand(program);
  registerClientCommands(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; usage errors exit 2 (commander has printed the message).
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    fail(err);
  }
}

void main();

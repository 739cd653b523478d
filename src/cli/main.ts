import {
  CLIENT_COMMANDS,
  GLOBAL_OPTIONS_HELP,
  GLOBAL_VALUE_FLAGS,
  reportError,
  runClientCommand,
} from './client-commands.js';
import { EXIT, UsageError, type CliIo } from './io.js';

export type { CliIo, Output } from './io.js';

/** `tsraft --help`. */
export const USAGE = `Usage: tsraft <command> [arguments] [options]

Server commands:
  serve                       run one cluster member (tsraft serve --help)
  dev                         start a local three-node cluster (tsraft dev --help)

Client commands:
  put <key> <value>           set a key
  get <key>                   print a key's value [--consistency c] [--json]
  del <key>                   delete a key [--prev-index N]
  cas <key> <value>           compare-and-set: --prev-index N (0: only if absent)
  ls [prefix]                 list keys [--limit N] [--json]
  status                      show the leader, term, indexes and members
  members <sub> [name]        list, add, promote and remove members
  transfer <name>             hand leadership to a voter
  snapshot                    take a snapshot now on each member (--endpoints) and compact its log

${GLOBAL_OPTIONS_HELP}

Run 'tsraft <command> --help' for a command's options.
Exit codes: 0 success; 1 failure, printed as "error: CODE message"; 2 bad usage.
`;

/**
 * The `tsraft` command line. Returns the exit code (the bin script passes it to `process.exit`).
 * Output goes to `io` (default: the process's stdout and stderr) so tests can capture it.
 *
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: readonly string[], io: Partial<CliIo> = {}): Promise<number> {
  const out: CliIo = { stdout: io.stdout ?? process.stdout, stderr: io.stderr ?? process.stderr };
  const { command, rest } = splitCommand(argv);
  try {
    if (command === undefined) {
      if (rest.includes('--help') || rest.includes('-h')) {
        out.stdout.write(USAGE);
        return EXIT.OK;
      }
      throw new UsageError(
        rest.length === 0 ? 'no command given' : `no command given (got ${rest.join(' ')})`,
        USAGE,
      );
    }
    if (command === 'help') {
      const topic = rest.find((a) => !a.startsWith('-'));
      if (topic === undefined) {
        out.stdout.write(USAGE);
        return EXIT.OK;
      }
      return await main([topic, '--help'], out);
    }
    if (command === 'serve') {
      // Loaded on demand: client commands should not pay for loading the whole server.
      const { serveCommand } = await import('./serve.js');
      return await serveCommand(rest);
    }
    if (command === 'dev') {
      const { devCommand } = await import('./dev.js');
      return await devCommand(rest);
    }
    if (CLIENT_COMMANDS[command] === undefined) {
      throw new UsageError(`unknown command ${JSON.stringify(command)}`, USAGE);
    }
    return await runClientCommand(command, rest, out);
  } catch (e) {
    return reportError(e, out);
  }
}

/**
 * Finds the command: the first argument that is neither a flag nor the value of a global flag
 * (so `tsraft --endpoints URL get k` and `tsraft get k --endpoints URL` both work). `rest` is
 * `argv` without it. Server commands get their own arguments untouched.
 */
export function splitCommand(argv: readonly string[]): { command: string | undefined; rest: string[] } {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (GLOBAL_VALUE_FLAGS.has(a)) {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return { command: a, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
  }
  return { command: undefined, rest: [...argv] };
}

// Child-process entry for integration tests: `tsraft serve` from the current sources.
import { serveCommand } from '../../src/cli/serve.js';

process.exitCode = await serveCommand(process.argv.slice(2));

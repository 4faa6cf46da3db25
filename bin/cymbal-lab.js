#!/usr/bin/env node
// The compiled program lives in dist/; `npm install` builds it through the prepare script.
import { existsSync } from 'node:fs';

const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write(
    'cymbal-lab is not built yet. Run `npm install` (or `npm run build`) in its folder.\n',
  );
  process.exit(1);
}
// A closed pipe (`cymbal-lab status | head`) is a normal way for output to end.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});
const { main } = await import(entry.href);
process.exitCode = await main(process.argv);

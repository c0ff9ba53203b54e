#!/usr/bin/env node
// A `solc` executable backed by the npm `solc` package (soljson), for machines that cannot reach
// binaries.soliditylang.org. It speaks the part of solc's command line that py-solc-x and
// crytic-compile (Slither) use:
//   solc --version
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths P[,P]] [input.json]
// Sources given by "urls" (and imports missing from the input) are read from the base path, then
// the include paths, then the node_modules beside this script (where @openzeppelin/contracts lives).
'use strict';

const fs = require('fs');
const path = require('path');
const solc = require('solc');

function usage(message) {
  process.stderr.write(`solc-adapter: ${message}\n` +
    'usage: solc --version | solc --standard-json [--base-path P] [--include-path P] ' +
    '[--allow-paths P] [input.json]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: process.cwd(), includePaths: [], input: null };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      i += 1;
      if (i >= argv.length) usage(`${flag} needs a value`);
      return argv[i];
    };
    switch (flag) {
      case '--version': opts.version = true; break;
      case '--standard-json': opts.standardJson = true; break;
      case '--base-path': opts.basePath = path.resolve(value()); break;
      case '--include-path': opts.includePaths.push(path.resolve(value())); break;
      case '--allow-paths': value(); break; // reads are confined to the search roots below anyway
      case '--pretty-json': case '--no-color': break;
      default:
        if (flag.startsWith('-')) usage(`unsupported option ${flag}`);
        if (opts.input !== null) usage(`more than one input file: ${opts.input} and ${flag}`);
        opts.input = flag;
    }
  }
  return opts;
}

function makeReader(roots) {
  return function findImport(importPath) {
    const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.join(r, importPath));
    for (const candidate of candidates) {
      const resolved = path.resolve(candidate);
      const inside = path.isAbsolute(importPath) || roots.some((r) => resolved.startsWith(r + path.sep));
      if (inside && fs.existsSync(resolved) && fs.statSync(resolved).isFile()) {
        return { contents: fs.readFileSync(resolved, 'utf8') };
      }
    }
    return { error: `File not found: ${importPath} (searched ${candidates.join(', ')})` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!opts.standardJson) usage('only --version and --standard-json are supported');
  const input = opts.input === null ? fs.readFileSync(0, 'utf8') : fs.readFileSync(opts.input, 'utf8');
  const roots = [opts.basePath, ...opts.includePaths, path.join(__dirname, 'node_modules')];
  const output = solc.compile(input, { import: makeReader(roots) });
  process.stdout.write(output);
  process.stdout.write('\n');
}

main();

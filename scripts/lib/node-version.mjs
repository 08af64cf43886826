/**
 * The Node.js version check that `npm run dev` and `npx heimdex` run before anything else: on an
 * older Node they stop at once with one message that says how to get a new enough one, instead of
 * starting PostgreSQL and the embedder and then failing inside wrangler. Plain JavaScript, so that
 * it runs on any Node before tsx or anything else is loaded. The minimum is package.json "engines".
 */
import fs from 'node:fs';

/** package.json's `engines.node` (`>=22.12.0`) as [major, minor, patch]. */
export function requiredNode() {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  const m = /^>=\s*(\d+)\.(\d+)\.(\d+)$/.exec(pkg.engines?.node ?? '');
  if (!m) throw new Error(`package.json engines.node must read ">=X.Y.Z"`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** How to get Node `major` on this platform: the lines of the hint. */
export function howToGetNode(major, platform = process.platform, arch = process.arch) {
  const lines = [
    `  nvm:   nvm install ${major} && nvm use ${major}   (the checkout's .nvmrc says ${major})`,
    `  fnm:   fnm install ${major} && fnm use ${major}`,
    `  or the installer from https://nodejs.org/en/download`,
  ];
  if ((platform === 'linux' || platform === 'darwin') && (arch === 'x64' || arch === 'arm64')) {
    // What .ci/run does: Node's own binaries, published on the npm registry.
    const pkg = `node-${platform}-${arch}`;
    lines.push(
      `  or, with npm alone (no root, no other download site):`,
      `         npm install --prefix ~/.cache/node${major} ${pkg}@${major}`,
      `         export PATH=~/.cache/node${major}/node_modules/${pkg}/bin:$PATH`,
    );
  }
  return lines;
}

/**
 * The problem with running `program` on Node `version` (default: this process's), as lines to
 * print; undefined when the version is new enough.
 */
export function nodeVersionProblem(
  program,
  version = process.versions.node,
  required = requiredNode(),
  platform = process.platform,
  arch = process.arch,
) {
  const have = version.split('.').map(Number);
  for (let i = 0; i < 3; i++) {
    const a = have[i] ?? 0;
    const b = required[i];
    if (a > b) return undefined;
    if (a < b) {
      return [
        `${program}: needs Node.js ${required.join('.')} or newer; this is Node.js ${version} (${process.execPath}).`,
        `Get Node.js ${required[0]}, then run it again:`,
        ...howToGetNode(required[0], platform, arch),
      ];
    }
  }
  return undefined;
}

/** Prints the problem on stderr and exits 1 when this Node is too old. */
export function requireNode(program) {
  const problem = nodeVersionProblem(program);
  if (!problem) return;
  process.stderr.write(problem.join('\n') + '\n');
  process.exit(1);
}

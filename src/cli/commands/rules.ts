/**
 * amendctl rules validate RULES
 * amendctl rules test RULES CASES
 *
 * `validate` loads and compiles a ruleset (exit 2 with file, rule and path on error).
 * `test` runs table cases (see src/cli/rule-cases.ts) and reports each; exit 1 if any fail.
 */
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadCases, runCases } from '../rule-cases';
import { type Command, UsageError } from '../io';
import { readInputFile, readRuleset } from './plan';

const USAGE = 'amendctl rules validate RULES | amendctl rules test RULES CASES [--verbose]';

export const rulesCommand: Command = async (argv, io) => {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, verbose: { type: 'boolean', short: 'v' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${USAGE}`);
  }
  const { values, positionals } = parsed;
  const [sub, ...args] = positionals;
  if (values.help || sub === 'help') {
    io.out(
      `usage: ${USAGE}\n\n  validate RULES       check a ruleset: schema, CEL expressions, templates, targets\n  test RULES CASES     run table cases (amendment + applied state + expected plan)\nExit: 0 ok, 1 a case failed, 2 input error.`,
    );
    return 0;
  }
  if (sub === 'validate') {
    if (args.length !== 1) throw new UsageError(`expected one RULES file\nusage: ${USAGE}`);
    const rs = readRuleset(args[0]!);
    io.out(
      `${args[0]}: ok — ${rs.rules.length} rules, ${rs.validations.length} validations, targets ${rs.targets.join(', ')}; sha256 ${rs.hash}`,
    );
    return 0;
  }
  if (sub === 'test') {
    if (args.length !== 2) throw new UsageError(`expected RULES and CASES\nusage: ${USAGE}`);
    const [rulesPath, casesPath] = args as [string, string];
    const rs = readRuleset(rulesPath);
    const cases = loadCases(readInputFile(casesPath, 'rule cases'), casesPath);
    const base = dirname(casesPath);
    const results = runCases(rs, cases, casesPath, (rel) => {
      const file = resolve(base, rel);
      return { text: readInputFile(file, 'amendment'), file: rel };
    });
    let failed = 0;
    for (const r of results) {
      io.out(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.name}`);
      if (!r.ok) failed++;
      for (const f of r.failures) io.out(`        ${f}`);
      if (values.verbose) for (const o of r.plan.operations) io.out(`        · ${o.id}`);
    }
    io.out(
      `\n${results.length - failed} passed, ${failed} failed (${results.length} cases; rules sha256 ${rs.hash.slice(0, 12)})`,
    );
    return failed > 0 ? 1 : 0;
  }
  throw new UsageError(`${sub ? `unknown subcommand '${sub}'` : 'expected a subcommand'}\nusage: ${USAGE}`);
};

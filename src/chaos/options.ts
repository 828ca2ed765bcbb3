/** npm run chaos's options: node:util parseArgs reads them, zod checks and converts them. */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { formatPath } from '../domain/errors';

const int = (min: number) => z.coerce.number().int().min(min);
const seconds = z.coerce.number().positive();
const fraction = z.coerce.number().min(0).max(1);

export const ChaosOptionsSchema = z
  .object({
    contracts: int(1).max(500).default(20),
    amendments: int(1).max(100).default(10),
    /** Default: a random one, printed, so the run can be repeated. */
    seed: int(0)
      .max(0xffffffff)
      .default(() => Math.floor(Math.random() * 0x7fffffff)),
    /** Mean seconds between SIGKILLs (each interval drawn from 0.5 to 1.5 times it). */
    killEvery: seconds.default(5),
    /** At most this many kills (default: no limit). */
    maxKills: int(0).optional(),
    workers: int(1).max(8).default(2),
    outageTarget: z.enum(['idp', 'warehouse']).default('idp'),
    outageSeconds: seconds.default(10),
    /** The dev server restarts once this share of the amendments has been submitted; the outage starts at outageAt. */
    restartAt: fraction.default(0.3),
    outageAt: fraction.default(0.5),
    /** Mean milliseconds between two submissions. */
    submitGapMs: int(0).default(100),
    /** Seconds until whatever is not final counts as lost. */
    timeout: seconds.default(1200),
    json: z.string().min(1).optional(),
    keep: z.coerce.boolean().default(false),
  })
  .strict();
export type ChaosOptions = z.output<typeof ChaosOptionsSchema>;

export const USAGE = `usage: npm run chaos -- [--contracts 20] [--amendments 10] [--seed N] [--kill-every 5] [--max-kills N]
       [--workers 2] [--outage-target idp|warehouse] [--outage-seconds 10] [--restart-at 0.3] [--outage-at 0.5]
       [--submit-gap-ms 100] [--timeout 1200] [--json FILE] [--keep]
Submits contracts x amendments in shuffled order on a stack of its own while workers are SIGKILLed,
the dev server restarts once on its SQLite file and a target has an outage; then checks that every
amendment is final and every account in SCIM and PostgreSQL is what the contracts say.
Exit code 0 when nothing was lost, wrong or duplicated.`;

/** Bad arguments (exit code 2), or --help (the usage, exit code 0). */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly exitCode: 0 | 2 = 2,
  ) {
    super(message);
  }
}

const FLAGS = [
  'contracts',
  'amendments',
  'seed',
  'kill-every',
  'max-kills',
  'workers',
  'outage-target',
  'outage-seconds',
  'restart-at',
  'outage-at',
  'submit-gap-ms',
  'timeout',
  'json',
] as const;

const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** The options, or a UsageError naming the flag and what it takes (`--help`: the usage). */
export function parseChaosArgs(argv: string[]): ChaosOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        ...Object.fromEntries(FLAGS.map((f) => [f, { type: 'string' as const }])),
        keep: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) throw new UsageError(USAGE, 0);
  const raw = Object.fromEntries(
    Object.entries(values)
      .filter(([k, v]) => k !== 'help' && v !== undefined)
      .map(([k, v]) => [camel(k), v]),
  );
  const parsed = ChaosOptionsSchema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `--${kebab(formatPath(i.path))}: ${i.message}`);
    throw new UsageError(`${lines.join('\n')}\n${USAGE}`);
  }
  return parsed.data;
}

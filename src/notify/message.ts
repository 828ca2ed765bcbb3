/**
 * The body of a notice: Slack-compatible JSON (an incoming webhook takes it as is): `text`, the
 * one-line fallback notifications show, and `blocks`: what is asked, of whom, why, what the
 * amendment grants, the deadline, the decision, and a link to the inbox. Every value that comes
 * from a contract or a person is one line (src/domain/text.ts `shown`) and mrkdwn-escaped
 * (&, <, >), so no value can make a link, a mention (<!channel>) or a formatting token.
 */
import { shown } from '../domain/text';
import type { ApprovalNotice } from './notice';

/** Slack's mrkdwn escaping: the three characters it reads as control. */
export function mrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A value from a contract or a person, for a message: one line, at most `max` characters, escaped. */
const v = (s: string, max = 120): string => mrkdwn(shown(s, max));

export interface SlackBlock {
  type: 'section' | 'context';
  text?: { type: 'mrkdwn'; text: string };
  elements?: Array<{ type: 'mrkdwn'; text: string }>;
}

export interface SlackMessage {
  text: string;
  blocks: SlackBlock[];
}

const REASONS_SHOWN = 5;
const GRANTS_SHOWN = 5;
/** Slack refuses a section text over 3000 characters. */
const SECTION_MAX = 2900;

const HEADLINE: Record<ApprovalNotice['kind'], string> = {
  requested: 'Approval requested',
  reminded: 'Reminder: approval still needed',
  escalated: 'Approval escalated',
  decided: 'Approval decided',
};

const OUTCOME: Record<NonNullable<ApprovalNotice['decision']>['outcome'], string> = {
  approved: 'Approved',
  rejected: 'Rejected',
  expired: 'Expired',
};

const section = (text: string): SlackBlock => ({
  type: 'section',
  text: { type: 'mrkdwn', text: text.length > SECTION_MAX ? `${text.slice(0, SECTION_MAX)}…` : text },
});
const more = (n: number): string[] => (n > 0 ? [`… and ${n} more`] : []);
const plural = (n: number, one: string, many = `${one}s`): string => `${n} ${n === 1 ? one : many}`;

/** Who may decide, as a line. */
export function deciders(eligible: readonly string[]): string {
  if (eligible.length === 0 || eligible.includes('*')) return 'anyone but the submitter';
  const names = eligible.slice(0, 10).map((e) => v(e, 80));
  return [...names, ...more(eligible.length - names.length)].join(', ');
}

/** The inbox link of an amendment, when the endpoint has an inbox base URL. */
export function inboxLink(inboxUrl: string | undefined, amendmentId: string): string | undefined {
  return inboxUrl
    ? `${inboxUrl.replace(/\/+$/, '').replace(/\|/g, '%7C')}/inbox/amendments/${encodeURIComponent(amendmentId)}`
    : undefined;
}

export function noticeMessage(n: ApprovalNotice, opts: { inboxUrl?: string } = {}): SlackMessage {
  const amendment = v(n.amendmentId, 80);
  const subject = `amendment ${amendment} to contract ${v(n.contractId, 80)}${n.customerId ? ` (customer ${v(n.customerId, 80)})` : ''}`;
  const outcome = n.decision ? OUTCOME[n.decision.outcome] : undefined;
  const headline = n.kind === 'decided' && outcome ? `${outcome}` : HEADLINE[n.kind];

  const blocks: SlackBlock[] = [section(`*${headline}*: ${subject}`)];

  if (n.kind === 'decided' && n.decision) {
    const by = n.decision.by
      ? ` by ${v(n.decision.by, 80)}`
      : n.decision.outcome === 'expired'
        ? ' (the deadline passed)'
        : '';
    const why = n.decision.reason ? `\n>${v(n.decision.reason, 300)}` : '';
    blocks.push(section(`*Decision:* ${OUTCOME[n.decision.outcome].toLowerCase()}${by}${why}`));
  } else {
    const waiting = n.waitingFor ? v(n.waitingFor, 200) : undefined;
    blocks.push(section(`*Asked of:* ${deciders(n.eligible)}${waiting ? `\n${waiting}` : ''}`));
  }

  if (n.reasons.length > 0) {
    const shownReasons = n.reasons
      .slice(0, REASONS_SHOWN)
      .map((r) => `• ${v(r.message, 200)} (rule ${v(r.ruleId, 60)})`);
    blocks.push(
      section(
        ['*Why approval is needed:*', ...shownReasons, ...more(n.reasons.length - shownReasons.length)].join('\n'),
      ),
    );
  }

  const first = n.grants.first.slice(0, GRANTS_SHOWN).map((g) => `• ${v(g, 160)}`);
  const grantsMore = n.grants.total - first.length;
  blocks.push(
    section([`*What it grants:* ${plural(n.grants.total, 'access change')}`, ...first, ...more(grantsMore)].join('\n')),
  );

  const context: string[] = [];
  if (n.deadline && n.kind !== 'decided') context.push(`Deadline: ${v(n.deadline, 40)}`);
  const link = inboxLink(opts.inboxUrl, n.amendmentId);
  if (link) context.push(`<${mrkdwn(link)}|Open in the inbox>`);
  context.push(`${v(n.kind, 20)} at ${v(n.at, 40)} · ${v(n.id, 120)}`);
  blocks.push({ type: 'context', elements: context.map((text) => ({ type: 'mrkdwn', text })) });

  const fallback =
    n.kind === 'decided' && outcome
      ? `${outcome}${n.decision?.by ? ` by ${v(n.decision.by, 80)}` : ''}: ${subject}`
      : `${HEADLINE[n.kind]}: ${subject}${n.waitingFor ? `: ${v(n.waitingFor, 200)}` : ''}`;
  return { text: fallback, blocks };
}

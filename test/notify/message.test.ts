/** The Slack-compatible body: readable, and no value from a contract can format, link or mention. */
import { mrkdwn, noticeMessage } from '../../src/notify/message';
import { sampleNotice } from './fixtures';

const all = (m: ReturnType<typeof noticeMessage>): string =>
  [m.text, ...m.blocks.flatMap((b) => [b.text?.text ?? '', ...(b.elements ?? []).map((e) => e.text)])].join('\n');

test('a request says what is asked, of whom, why, what it grants, the deadline, and links to the inbox', () => {
  const m = noticeMessage(sampleNotice(), { inboxUrl: 'https://amendctl.example.com' });
  expect(m.text).toBe(
    'Approval requested: amendment am-1 to contract ct-acme (customer acme): waiting for 1 more approval from dana, erin',
  );
  expect(m.blocks.map((b) => b.type)).toEqual(['section', 'section', 'section', 'section', 'context']);
  expect(m.blocks[1]!.text!.text).toBe('*Asked of:* dana, erin\nwaiting for 1 more approval from dana, erin');
  expect(m.blocks[2]!.text!.text).toBe('*Why approval is needed:*\n• adds 2 admin seats (rule admin-seats)');
  expect(m.blocks[3]!.text!.text).toBe(
    '*What it grants:* 12 access changes\n• idp: create ann@acme.test\n• idp: create bob@acme.test\n• warehouse: grant analyst to ann@acme.test\n… and 9 more',
  );
  expect(m.blocks[4]!.elements!.map((e) => e.text)).toEqual([
    'Deadline: 2026-12-04T10:00:00.000Z',
    '<https://amendctl.example.com/inbox/amendments/am-1|Open in the inbox>',
    'requested at 2026-12-01T10:00:00.000Z · am-1:requested:1',
  ]);
});

test('a decision says the outcome, by whom and why; anyone-but-the-submitter reads as such', () => {
  const m = noticeMessage(
    sampleNotice({
      kind: 'decided',
      id: 'am-1:decided:1',
      decision: { outcome: 'rejected', by: 'dana', reason: 'not this quarter' },
    }),
  );
  expect(m.text).toBe('Rejected by dana: amendment am-1 to contract ct-acme (customer acme)');
  expect(m.blocks[1]!.text!.text).toBe('*Decision:* rejected by dana\n>not this quarter');
  expect(all(m)).not.toContain('Deadline');
  expect(all(m)).not.toContain('Open in the inbox');
  const anyone = noticeMessage(sampleNotice({ eligible: ['*'], waitingFor: undefined }));
  expect(anyone.blocks[1]!.text!.text).toBe('*Asked of:* anyone but the submitter');
});

test('every contract value is mrkdwn-escaped: no link, mention or tag survives', () => {
  const hostile = '<!channel> <https://evil.example|click> & <@U123>';
  const m = noticeMessage(
    sampleNotice({
      amendmentId: 'am<1>&x|y',
      contractId: hostile,
      customerId: hostile,
      waitingFor: hostile,
      eligible: [hostile],
      reasons: [{ ruleId: hostile, message: hostile }],
      grants: { total: 1, first: [hostile] },
      decision: { outcome: 'approved', by: hostile, reason: hostile },
    }),
    { inboxUrl: 'https://amendctl.example.com' },
  );
  const text = all(m);
  // The one link is ours: the inbox, with the id percent-encoded inside it.
  expect(text.match(/</g)).toHaveLength(1);
  expect(text).toContain('<https://amendctl.example.com/inbox/amendments/am%3C1%3E%26x%7Cy|Open in the inbox>');
  expect(text).not.toMatch(/<!channel>|<@U123>|<https:\/\/evil/);
  expect(text).toContain('&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;');
  expect(mrkdwn('a & b < c > d')).toBe('a &amp; b &lt; c &gt; d');
});

test('values are one line and bounded; long lists are cut with a count', () => {
  const m = noticeMessage(
    sampleNotice({
      contractId: 'ct\n*bold*\u202e',
      reasons: Array.from({ length: 8 }, (_, i) => ({ ruleId: `r${i}`, message: 'x'.repeat(500) })),
      eligible: Array.from({ length: 14 }, (_, i) => `user${i}`),
    }),
  );
  const text = all(m);
  expect(m.text).toContain('ct&lt;U+000A&gt;*bold*&lt;U+202E&gt;');
  expect(text).toContain('… and 3 more');
  expect(text).toContain('user9, … and 4 more');
  expect(text).not.toContain('x'.repeat(201));
  expect(JSON.stringify(m).length).toBeLessThan(8000);
});

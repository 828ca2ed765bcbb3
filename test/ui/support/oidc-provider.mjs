/* global process, console, URL, URLSearchParams */
/**
 * A real OpenID provider for the inbox's tests: oidc-provider (npm) on loopback, in its own Node
 * process (it is an ES module with ES-module dependencies that Jest's CommonJS runtime cannot load).
 * One confidential client (secret, PKCE required) whose redirect URI is argv[2]; the accounts are
 * OIDC_TEST_ACCOUNTS (JSON: { login: { sub, password, name, email } }). The interaction is a
 * minimal login form of our own that checks the password (oidc-provider's devInteractions accept
 * anyone), and consent is granted at once (a first-party client). Prints { issuer } once listening.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [, , redirectUri, clientId] = process.argv;
const clientSecret = process.env.OIDC_TEST_CLIENT_SECRET;
const accounts = JSON.parse(process.env.OIDC_TEST_ACCOUNTS ?? '{}');
const bySub = new Map(Object.entries(accounts).map(([login, a]) => [a.sub, { login, ...a }]));

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      response_types: ['code'],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email', 'email_verified'] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  async findAccount(_ctx, sub) {
    const a = bySub.get(sub);
    if (!a) return undefined;
    return {
      accountId: sub,
      claims: async () => ({ sub, name: a.name, preferred_username: a.login, email: a.email, email_verified: true }),
    };
  },
});
const callback = provider.callback();

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const loginForm = (
  uid,
  error,
) => `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Test IdP sign-in</title></head>
<body><h1>Test IdP</h1>${error ? `<p role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login">
<label for="login">Username</label> <input id="login" name="login" autocomplete="username" required>
<label for="password">Password</label> <input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Continue</button></form></body></html>`;

const body = (req) =>
  new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (text += c));
    req.on('end', () => resolve(new URLSearchParams(text)));
    req.on('error', reject);
  });

server.on('request', async (req, res) => {
  const path = new URL(req.url, issuer).pathname;
  const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(path);
  if (!m) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (req.method === 'POST' && m[2] && details.prompt.name === 'login') {
      const form = await body(req);
      const a = accounts[form.get('login') ?? ''];
      if (!a || a.password !== form.get('password')) {
        res
          .writeHead(401, { 'content-type': 'text/html; charset=utf-8' })
          .end(loginForm(details.uid, 'Wrong username or password.'));
        return;
      }
      await provider.interactionFinished(req, res, { login: { accountId: a.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'login') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(loginForm(details.uid));
      return;
    }
    if (details.prompt.name === 'consent') {
      const { prompt, params, session, grantId } = details;
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {}))
        grant.addResourceScope(indicator, scopes.join(' '));
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId: await grant.save() } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    res.writeHead(501).end(`prompt ${details.prompt.name} not handled`);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err && err.message));
  }
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
console.log(JSON.stringify({ issuer }));

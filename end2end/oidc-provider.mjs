#!/usr/bin/env node
// Stand-in for Google's OpenID Connect provider ("Sign in with Google"),
// used by the Rust integration tests and the Playwright tests.
//
// Built on oauth2-mock-server's OAuth2Issuer + OAuth2Service, served by our
// own http server so that a control endpoint can live on the same port.
//
//   node end2end/oidc-provider.mjs [PORT]     (or OIDC_PORT=...; default 0 = free port)
//
// Listens on 127.0.0.1; when ready prints ONE line to stdout:
//   {"issuer":"http://127.0.0.1:PORT","control":"http://127.0.0.1:PORT/control"}
// Exits on SIGTERM/SIGINT, and when stdin reaches EOF if stdin is a pipe, so
// spawn it with a piped stdin and a dying test takes it down too.
//
// Provider endpoints (from oauth2-mock-server): /.well-known/openid-configuration,
// /authorize (redirects straight back with code & state), /token, /jwks, /userinfo.
// Token requests are checked for an issued, unused code; the redirect_uri used
// at /authorize; a code_verifier when a code_challenge was sent; and, when
// OIDC_CLIENT_ID / OIDC_CLIENT_SECRET (or a "client" command) are set, client
// credentials sent by client_secret_basic or client_secret_post.
//
// Control: POST /control with a JSON object; its settings hold until changed.
// Every reply (also GET /control) is {mode, user, client, kid, jwks_fetches}.
//   {"sub":"..","email":"..","email_verified":false,"name":".."}  claims (null drops one)
//   {"mode":"normal"|"wrong_nonce"|"wrong_audience"|"expired"|"foreign_key"|"unknown_kid"|"error"}
//   {"rotate":true}   new RS256 key and kid; the old one leaves the JWKS
//   {"client":{"id":"..","secret":".."}}   credentials the token endpoint demands (null: none)
//   {"reset":true}    normal mode, default user, jwks_fetches = 0
//   {"stats":true}    just the reply
import { randomUUID } from "node:crypto";
import { fstatSync } from "node:fs";
import { createServer } from "node:http";
import { OAuth2Issuer, OAuth2Service } from "oauth2-mock-server";
import { exportJWK, generateKeyPair } from "jose";

const MODES = ["normal", "wrong_nonce", "wrong_audience", "expired", "foreign_key", "unknown_kid", "error"];
const DEFAULT_USER = { sub: "100000000000000000001", email: "alice@example.com", email_verified: true, name: "Alice Example" };
const state = { mode: "normal", user: { ...DEFAULT_USER }, jwks_fetches: 0, client: null };
if (process.env.OIDC_CLIENT_ID) state.client = { id: process.env.OIDC_CLIENT_ID, secret: process.env.OIDC_CLIENT_SECRET };

const issuer = new OAuth2Issuer();
const service = new OAuth2Service(issuer);
const codes = new Map(); // code -> { redirect_uri, pkce } for codes not yet exchanged

// Keys. The package's JWKStore has no remove() and signs with its keys in turn,
// so pin it: sign with `current` (or, in foreign_key mode, with a key that is
// not published but carries current's kid) and publish only `current`.
const store = issuer.keys;
const publish = store.toJSON.bind(store);
let current = await store.generate("RS256");
const foreign = { ...(await exportJWK((await generateKeyPair("RS256", { extractable: true })).privateKey)), alg: "RS256" };
store.get = () => (state.mode === "foreign_key" ? { ...foreign, kid: current.kid } : current);
store.toJSON = () => publish().filter((key) => key.kid === current.kid);

const claims = () => Object.fromEntries(Object.entries(state.user).filter(([, v]) => v !== null));

service.on("beforeAuthorizeRedirect", ({ url }, req) => {
  const code = url.searchParams.get("code");
  if (state.mode === "error") {
    url.searchParams.delete("code"); // state= is already on the url
    url.searchParams.set("error", "access_denied");
  } else if (code) {
    codes.set(code, { redirect_uri: req.query.redirect_uri, pkce: Boolean(req.query.code_challenge) });
  }
});

service.on("beforeTokenSigning", ({ header, payload }) => {
  if ("scope" in payload) return void (payload.sub = state.user.sub); // the access token
  Object.assign(payload, claims()); // the id_token: already has iss, aud, iat, exp, nonce
  const now = Math.floor(Date.now() / 1000);
  if (state.mode === "wrong_nonce") payload.nonce = "not-the-nonce-you-sent";
  if (state.mode === "wrong_audience") payload.aud = "someone-else.apps.googleusercontent.com";
  if (state.mode === "expired") Object.assign(payload, { iat: now - 7200, nbf: now - 7200, exp: now - 3600 });
  if (state.mode === "unknown_kid") header.kid = `unknown-${randomUUID()}`;
});

service.on("beforeUserinfo", (response) => void (response.body = claims()));

function clientOf(req) {
  const basic = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? "");
  if (!basic) return { id: req.body.client_id, secret: req.body.client_secret };
  const [id, ...secret] = Buffer.from(basic[1], "base64").toString().split(":");
  return { id: decodeURIComponent(id), secret: decodeURIComponent(secret.join(":")) };
}

service.on("beforeResponse", (response, req) => {
  const fail = (statusCode, error, error_description) => Object.assign(response, { statusCode, body: { error, error_description } });
  const client = clientOf(req);
  if (state.client && (client.id !== state.client.id || client.secret !== state.client.secret))
    return fail(401, "invalid_client", "wrong client_id or client_secret");
  if (req.body.grant_type !== "authorization_code") return;
  const issued = codes.get(req.body.code);
  codes.delete(req.body.code);
  if (!issued) return fail(400, "invalid_grant", "unknown or already used code");
  if (req.body.redirect_uri !== issued.redirect_uri) return fail(400, "invalid_grant", "redirect_uri mismatch");
  if (issued.pkce && !req.body.code_verifier) return fail(400, "invalid_grant", "code_verifier required");
});

async function control(cmd) {
  if (cmd.reset) Object.assign(state, { mode: "normal", user: { ...DEFAULT_USER }, jwks_fetches: 0 });
  if ("mode" in cmd) {
    if (!MODES.includes(cmd.mode)) throw new Error(`unknown mode ${cmd.mode}; one of ${MODES.join(", ")}`);
    state.mode = cmd.mode;
  }
  for (const k of Object.keys(DEFAULT_USER)) if (k in cmd) state.user[k] = cmd[k];
  if ("client" in cmd) state.client = cmd.client;
  if (cmd.rotate) current = await store.generate("RS256");
  return { mode: state.mode, user: state.user, client: state.client, kid: current.kid, jwks_fetches: state.jwks_fetches };
}

const server = createServer(async (req, res) => {
  const path = new URL(req.url, "http://x").pathname;
  if (path === "/jwks") state.jwks_fetches++;
  if (path !== "/control") return service.requestHandler(req, res);
  let body = "";
  for await (const chunk of req) body += chunk;
  try {
    const reply = await control(req.method === "POST" ? JSON.parse(body || "{}") : {});
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(reply));
  } catch (err) {
    res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: String(err.message) }));
  }
});

const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);
await new Promise((resolve, reject) => server.once("error", reject).listen(port, "127.0.0.1", resolve));
issuer.url = `http://127.0.0.1:${server.address().port}`; // OAuth2Server would say "localhost"
process.stdout.write(`${JSON.stringify({ issuer: issuer.url, control: `${issuer.url}/control` })}\n`);

const quit = () => process.exit(0);
process.on("SIGTERM", quit).on("SIGINT", quit);
const stdinIsPipe = (() => {
  try {
    const s = fstatSync(0);
    return s.isFIFO() || s.isSocket();
  } catch {
    return false;
  }
})();
if (stdinIsPipe) process.stdin.on("end", quit).on("error", quit).resume();

import { createHmac } from "node:crypto";
import { expect, test } from "./fixtures";
import { ADMIN, ADMIN_PASSWORD, ready } from "./helpers";
import type { APIRequestContext, Page } from "@playwright/test";

// RFC 6238 with SHA-1, 6 digits, 30-second steps: what an authenticator app computes from the key
// the page shows. `offset` picks a step either side of now (the server takes each step once).
function base32(text: string): Buffer {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function totp(secret: string, offset = 0): string {
  const step = Math.floor(Date.now() / 1000 / 30) + offset;
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const hash = createHmac("sha1", base32(secret)).update(counter).digest();
  const at = hash[19] & 0x0f;
  const binary = ((hash[at] & 0x7f) << 24) | (hash[at + 1] << 16) | (hash[at + 2] << 8) | hash[at + 3];
  return String(binary % 1_000_000).padStart(6, "0");
}

async function signIn(page: Page, javaScriptEnabled: boolean, username: string, password: string, next: string) {
  await page.goto(`/login?next=${next}`);
  await ready(page, javaScriptEnabled);
  const form = page.getByTestId("sign-in-form");
  await form.getByLabel("Username").fill(username);
  await form.getByLabel("Password", { exact: true }).fill(password);
  await form.getByRole("button", { name: "Sign in" }).click();
}

/** A developer of their own, made through the REST API as the administrator, so the administrator
 * the other specs sign in as stays without a factor. */
async function createDeveloper(request: APIRequestContext, username: string, password: string) {
  const login = await request.post("/api/v1/auth/login", { data: { username: ADMIN, password: ADMIN_PASSWORD } });
  const admin = (await login.json()).access_token;
  const created = await request.post("/api/v1/users", {
    headers: { Authorization: `Bearer ${admin}` },
    data: { username, email: `${username}@company.com`, password, roles: ["developer"] },
  });
  expect(created.status()).toBe(201);
}

async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
}

test("a person enrols an authenticator app, then signs in with a code and with a recovery code", async ({ page, request, javaScriptEnabled }, info) => {
  const username = `mfa-${info.project.name === "hydrated" ? "h" : "n"}-${Date.now().toString(36)}`;
  const password = "Mfa-E2e-Password-42!";
  await createDeveloper(request, username, password);

  await signIn(page, javaScriptEnabled, username, password, "/account");
  await page.waitForURL((url) => url.pathname === "/account");
  await ready(page, javaScriptEnabled);
  await page.getByTestId("mfa-link").click();
  await expect(page).toHaveURL(/\/account\/mfa/);
  await ready(page, javaScriptEnabled);
  const enrol = page.getByTestId("enrol-totp");
  await expect(enrol.getByRole("img", { name: "QR code of the authenticator key" }).locator("svg")).toBeVisible();
  const secret = ((await page.getByTestId("totp-secret").textContent()) ?? "").trim();
  expect(secret).toMatch(/^[A-Z2-7]{32}$/);

  // A wrong code is refused next to the field, and nothing is enrolled.
  const form = page.getByTestId("confirm-totp-form");
  await form.getByLabel("Code from the app").fill("000000");
  await form.getByRole("button", { name: "Confirm" }).click();
  await expect(page.locator("#totp-code-errors")).toContainText("Code is not the code your app shows");
  await ready(page, javaScriptEnabled);

  await form.getByLabel("Code from the app").fill(totp(secret));
  await form.getByRole("button", { name: "Confirm" }).click();
  await expect(page).toHaveURL(/\/account\/mfa\?enrolled=1/);
  const codes = await page.getByTestId("recovery-code").allTextContents();
  expect(codes).toHaveLength(10);
  for (const code of codes) expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
  await expect(page.getByTestId("download-codes")).toHaveAttribute("download", "wasm-as-os-recovery-codes.txt");
  await expect(page.getByTestId("codes-left")).toHaveText("10 of 10 left");
  // Shown once.
  await page.goto("/account/mfa");
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId("recovery-code")).toHaveCount(0);
  await expect(page.getByTestId("totp-state")).toContainText("enrolled");

  // Signing in now asks for a code; the one that confirmed the app was spent, the next step's works.
  await signOut(page);
  await signIn(page, javaScriptEnabled, username, password, "/modules");
  await expect(page).toHaveURL(/\/login\/mfa/);
  await ready(page, javaScriptEnabled);
  const second = page.getByTestId("mfa-form");
  await second.getByLabel("Code").fill("123 456");
  await second.getByRole("button", { name: "Verify" }).click();
  await expect(page.locator("#code-errors")).toContainText("not right or was already used");
  await ready(page, javaScriptEnabled);
  await second.getByLabel("Code").fill(totp(secret, 1));
  await second.getByRole("button", { name: "Verify" }).click();
  await page.waitForURL((url) => url.pathname === "/modules");
  await ready(page, javaScriptEnabled);

  // And with a recovery code, which is then used up.
  await signOut(page);
  await signIn(page, javaScriptEnabled, username, password, "/account/mfa");
  await expect(page).toHaveURL(/\/login\/mfa/);
  await ready(page, javaScriptEnabled);
  await page.getByTestId("mfa-form").getByLabel("Code").fill(codes[3]);
  await page.getByTestId("mfa-form").getByRole("button", { name: "Verify" }).click();
  await page.waitForURL((url) => url.pathname === "/account/mfa");
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId("codes-left")).toHaveText("9 of 10 left");
});

// WebAuthn needs a host name: this test uses the server's localhost origin (the certificate names
// both), where the other specs use 127.0.0.1.
function localhost(path: string): string {
  const base = new URL(process.env.BASE_URL ?? "http://127.0.0.1:3000");
  base.hostname = "localhost";
  return new URL(path, base).toString();
}

test("a person registers a passkey, names it, signs in with it and removes it (Chromium's virtual authenticator)", async ({ page, request, javaScriptEnabled }) => {
  test.skip(!javaScriptEnabled, "WebAuthn is a JavaScript API: the no-JavaScript page is checked below");
  const username = `pk-${Date.now().toString(36)}`;
  const password = "Passkey-E2e-Password-42!";
  await createDeveloper(request, username, password);
  // A sign-in budget of its own (.ci/test trusts loopback as a proxy): the other specs sign in a lot.
  await page.context().setExtraHTTPHeaders({ "X-Forwarded-For": "198.51.100.77" });

  // A platform authenticator that verifies its user (as Touch ID or Windows Hello would).
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: { protocol: "ctap2", transport: "internal", hasResidentKey: true, hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true },
  });

  const signIn = async (next: string) => {
    await page.goto(localhost(`/login?next=${next}`));
    await ready(page, true);
    const form = page.getByTestId("sign-in-form");
    await form.getByLabel("Username").fill(username);
    await form.getByLabel("Password", { exact: true }).fill(password);
    await form.getByRole("button", { name: "Sign in" }).click();
  };

  await signIn("/account/mfa");
  await page.waitForURL((url) => url.pathname === "/account/mfa");
  await ready(page, true);
  await expect(page.getByTestId("no-passkeys")).toBeVisible();
  await expect(page.getByText("Registering a passkey needs JavaScript in this browser.")).toBeHidden();
  const add = page.getByTestId("add-passkey-form");
  // A name is asked for first.
  await add.getByRole("button", { name: "Add a passkey" }).click();
  expect((await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials).toHaveLength(0);
  await add.getByLabel("Name").fill("Work laptop");
  await add.getByRole("button", { name: "Add a passkey" }).click();
  await expect(page).toHaveURL(/\/account\/mfa\?added=1/);
  // The first factor comes with recovery codes, shown once.
  await expect(page.getByTestId("recovery-code")).toHaveCount(10);
  await expect(page.getByTestId("passkey-row")).toHaveCount(1);
  await expect(page.getByTestId("passkey-name")).toHaveValue("Work laptop");
  await expect(page.getByTestId("passkey-count")).toHaveText("1 registered");
  expect((await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials).toHaveLength(1);
  await ready(page, true);

  // Renamed in place.
  await page.getByTestId("passkey-name").fill("Laptop (home)");
  await page.getByTestId("passkey-row").getByRole("button", { name: "Rename" }).click();
  await expect(page.getByTestId("mfa-notice")).toHaveText("The passkey was renamed.");
  await expect(page.getByTestId("passkey-name")).toHaveValue("Laptop (home)");
  await ready(page, true);

  // Signing in now asks for the second step, and the passkey answers it.
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  await signIn("/modules");
  await expect(page).toHaveURL(/\/login\/mfa/);
  await ready(page, true);
  await page.getByTestId("passkey-sign-in").getByRole("button", { name: "Use a passkey" }).click();
  await page.waitForURL((url) => url.pathname === "/modules");
  await ready(page, true);
  const state = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(state.credentials[0].signCount).toBeGreaterThan(0);

  await page.goto(localhost("/account/mfa"));
  await ready(page, true);
  await expect(page.getByTestId("passkey-row")).not.toContainText("never");
  // Removed: the last factor of a developer may go, and the recovery codes with it.
  await page.getByRole("button", { name: "Remove passkey Laptop (home)" }).click();
  await expect(page.getByTestId("mfa-notice")).toHaveText("The passkey was removed.");
  await expect(page.getByTestId("no-passkeys")).toBeVisible();
  await expect(page.getByTestId("factors")).toHaveCount(0);
});

test("without JavaScript the passkey form says it needs it, and the authenticator app is offered", async ({ page, javaScriptEnabled }) => {
  test.skip(javaScriptEnabled, "the hydrated project registers a real passkey above");
  await page.context().setExtraHTTPHeaders({ "X-Forwarded-For": "198.51.100.78" });
  await page.goto("/login?next=/account/mfa");
  const form = page.getByTestId("sign-in-form");
  await form.getByLabel("Username").fill(ADMIN);
  await form.getByLabel("Password", { exact: true }).fill(ADMIN_PASSWORD);
  await form.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL((url) => url.pathname === "/account/mfa");
  await expect(page.getByText("Registering a passkey needs JavaScript in this browser.")).toBeVisible();
  await expect(page.getByTestId("add-passkey-form").getByRole("button", { name: "Add a passkey" })).toBeHidden();
  await expect(page.getByTestId("no-passkeys")).toBeVisible();
  await expect(page.getByTestId("enrol-totp")).toBeVisible();
});

import { createHmac } from "node:crypto";
import { expect, test } from "./fixtures";
import { ADMIN, ADMIN_PASSWORD, ready } from "./helpers";
import type { Page } from "@playwright/test";

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

async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
}

test("a person enrols an authenticator app, then signs in with a code and with a recovery code", async ({ page, request, javaScriptEnabled }, info) => {
  // A developer of their own, so the administrator the other specs sign in as stays without a factor.
  const username = `mfa-${info.project.name === "hydrated" ? "h" : "n"}-${Date.now().toString(36)}`;
  const password = "Mfa-E2e-Password-42!";
  const login = await request.post("/api/v1/auth/login", { data: { username: ADMIN, password: ADMIN_PASSWORD } });
  const admin = (await login.json()).access_token;
  const created = await request.post("/api/v1/users", {
    headers: { Authorization: `Bearer ${admin}` },
    data: { username, email: `${username}@company.com`, password, roles: ["developer"] },
  });
  expect(created.status()).toBe(201);

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

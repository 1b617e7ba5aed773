import { expect, test } from "./fixtures";
import { ready, signInAs } from "./helpers";

test("a person makes a personal API token, sees it once, uses it and revokes it", async ({ page, javaScriptEnabled }, info) => {
  const name = `e2e ${info.project.name === "hydrated" ? "h" : "n"} ${Date.now().toString(36)}`;
  await signInAs(page, javaScriptEnabled, "/account");
  const form = page.getByTestId("create-token-form");

  // A bad name is refused next to its field.
  await form.getByLabel("Token name").fill("-bad");
  await form.getByRole("button", { name: "Create token" }).click();
  await expect(page.locator("#token-name-errors")).toContainText("must be 1–64");
  await ready(page, javaScriptEnabled);

  // Made, narrowed to modules:read, and shown once.
  await form.getByLabel("Token name").fill(name);
  await form.getByLabel("Expires after").selectOption("30");
  await form.getByLabel("Only these permissions (optional)").fill("modules:read");
  await form.getByRole("button", { name: "Create token" }).click();
  await expect(page).toHaveURL(/\/account\?token=new/);
  const shown = page.getByTestId("new-token");
  await expect(shown).toHaveText(/^wao_[0-9a-f]{64}$/);
  const token = (await shown.textContent()) ?? "";

  // It works as a bearer token, with only what it names.
  const me = await page.request.get("/api/v1/me", { headers: { Authorization: `Bearer ${token}` } });
  expect(me.status()).toBe(200);
  expect((await me.json()).permissions).toEqual(["modules:read"]);

  // Not shown again; listed by its last characters.
  await page.goto("/account");
  await ready(page, javaScriptEnabled);
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  const row = page.getByTestId("tokens-table").getByRole("row").filter({ hasText: name });
  await expect(row).toContainText(`wao_…${token.slice(-4)}`);
  await expect(row).toContainText("modules:read");
  await expect(row).toContainText("active");

  // Revoked: refused at its next use.
  await row.getByRole("button", { name: `Revoke ${name}` }).click();
  await expect(page).toHaveURL(/\/account\?revoked=1/);
  await expect(page.getByTestId("tokens-table").getByRole("row").filter({ hasText: name })).toContainText("revoked");
  const after = await page.request.get("/api/v1/me", { headers: { Authorization: `Bearer ${token}` } });
  expect(after.status()).toBe(401);
});

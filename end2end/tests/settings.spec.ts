import { expect, test } from "./fixtures";
import { ADMIN, ADMIN_PASSWORD, ready, signInAs } from "./helpers";

// The Compliance page's settings: an administrator changes privacy.yml's audit retention (a
// wrong value is refused next to its field first), the page applies it at once, a save from a
// page opened before is refused, "Use the file's values" goes back; someone with system:audit
// but not system:config sees the settings read-only.
test("an admin edits a retention period, a stale page is refused, an auditor cannot edit", async ({ page, browser, request, javaScriptEnabled, baseURL }) => {
  await signInAs(page, javaScriptEnabled, "/compliance");
  await ready(page, javaScriptEnabled);
  const privacy = page.getByTestId("settings-privacy.yml");
  const audit = privacy.getByLabel("Keep audit events for");
  await expect(audit).toHaveValue("7y");

  // A second tab opened now will be stale after the save below.
  const stale = await page.context().newPage();
  await stale.goto("/compliance");
  await ready(stale, javaScriptEnabled);

  await audit.fill("5 yrs");
  await privacy.getByRole("button", { name: "Save privacy.yml" }).click();
  await expect(page.getByTestId("settings-privacy.yml").locator('[data-setting="privacy.data_retention.audit_logs"] .field-error')).toContainText('unknown unit "yrs"');
  await expect(page.getByTestId("privacy-settings")).toContainText("7 years");

  await ready(page, javaScriptEnabled);
  const again = page.getByTestId("settings-privacy.yml");
  await again.getByLabel("Keep audit events for").fill("5y");
  await again.getByRole("button", { name: "Save privacy.yml" }).click();
  await page.waitForURL((url) => url.searchParams.get("settings") === "saved");
  await expect(page.getByText("Settings saved: they apply now, on every replica.")).toBeVisible();
  // In force at once: the summary of the settings in force says so, and the field says it
  // differs from the file.
  await expect(page.getByTestId("privacy-settings")).toContainText("5 years");
  const field = page.getByTestId("settings-privacy.yml").locator('[data-setting="privacy.data_retention.audit_logs"]');
  await expect(field.getByRole("textbox")).toHaveValue("5y");
  await expect(field.getByTestId("overridden")).toHaveText("changed here; file: 7y");

  // The tab opened before the save is refused and told who saved.
  const staleForm = stale.getByTestId("settings-privacy.yml");
  await staleForm.getByLabel("Keep audit events for").fill("3y");
  await staleForm.getByRole("button", { name: "Save privacy.yml" }).click();
  await expect(stale.getByTestId("settings-error")).toContainText(`${ADMIN} saved privacy.yml`);
  await stale.close();

  // Recorded with the values before and after.
  const login = await request.post("/api/v1/auth/login", { data: { username: ADMIN, password: ADMIN_PASSWORD } });
  const token = (await login.json()).access_token;
  const events = await request.get("/api/v1/audit/events?event=config_change&limit=10", { headers: { Authorization: `Bearer ${token}` } });
  const saved = (await events.json()).events.find((e: any) => e.details?.source === "dashboard" && e.details?.after?.["privacy.data_retention.audit_logs"] === "5y");
  expect(saved.details.before["privacy.data_retention.audit_logs"]).toBe("7y");

  // Back to the file's values.
  await ready(page, javaScriptEnabled);
  await page.getByTestId("settings-privacy.yml").getByRole("button", { name: "Use the file's values" }).click();
  await page.waitForURL((url) => url.searchParams.get("settings") === "reset");
  await expect(page.getByTestId("privacy-settings")).toContainText("7 years");
  await expect(page.getByTestId("settings-privacy.yml").getByLabel("Keep audit events for")).toHaveValue("7y");

  // An auditor (system:audit only) reads the settings but cannot change them.
  const suffix = `${javaScriptEnabled ? "js" : "nojs"}${Date.now() % 100000}`;
  const auth = { Authorization: `Bearer ${token}` };
  const roleName = `auditor-${suffix}`;
  expect((await request.post("/api/v1/roles", { headers: auth, data: { name: roleName, permissions: ["system:audit"] } })).status()).toBe(201);
  const name = `aud${suffix}`;
  const password = "AuditorPassword123!";
  expect((await request.post("/api/v1/users", { headers: auth, data: { username: name, email: `${name}@example.com`, password, roles: [roleName] } })).status()).toBe(201);
  const context = await browser.newContext({ baseURL, ignoreHTTPSErrors: true, javaScriptEnabled });
  const other = await context.newPage();
  await other.goto("/login?next=/compliance");
  await ready(other, javaScriptEnabled);
  const form = other.getByTestId("sign-in-form");
  await form.getByLabel("Username").fill(name);
  await form.getByLabel("Password", { exact: true }).fill(password);
  await form.getByRole("button", { name: "Sign in" }).click();
  await other.waitForURL((url) => url.pathname === "/compliance");
  await expect(other.getByTestId("settings-read-only")).toContainText("system:config");
  await expect(other.getByTestId("settings-privacy.yml").getByLabel("Keep audit events for")).toBeDisabled();
  await expect(other.getByTestId("settings-save")).toHaveCount(0);
  await context.close();
});
